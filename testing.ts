/**
 * Test helpers of `@tofu/tofu`: a free TCP port and a unique temporary Unix socket path.
 *
 * @example Addresses for a test server
 * ```ts ignore
 * import { freeTcpPort, tempUdsPath } from "@tofu/tofu/testing";
 *
 * const port = freeTcpPort();
 * const path = tempUdsPath();
 * ```
 *
 * @module
 */

export { freeTcpPort, tempUdsPath } from "./src/testing.ts";
