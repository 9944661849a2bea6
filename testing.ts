/**
 * Test helpers of `@tofu/tofu`: a free TCP port and a unique temporary Unix socket path.
 *
 * @example Addresses for a test server
 * ```ts
 * import { assert } from "@std/assert";
 * import { serve } from "@tofu/tofu";
 * import { freeTcpPort, tempUdsPath } from "@tofu/tofu/testing";
 *
 * await using server = await serve([`tcp|127.0.0.1|${freeTcpPort()}`, `uds|${tempUdsPath()}`], () => "");
 * assert(server.addresses[1]!.startsWith("uds|"));
 * ```
 *
 * @module
 */

export { freeTcpPort, tempUdsPath } from "./src/testing.ts";
