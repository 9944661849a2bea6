// Address parsing and construction errors (src/address.ts): every refusal with its exact
// reason, the boundaries (port 65535, a 107-byte socket path), and the defaults.

import { assertEquals, assertThrows } from "@std/assert";
import {
  Status,
  TcpClientAddress,
  TcpServerAddress,
  TofuError,
  UdsClientAddress,
  UdsServerAddress,
} from "../mod.ts";
import { MAX_UDS_PATH_BYTES, parseAddress } from "../src/address.ts";

function refused(value: string, reason: string, parse = parseAddress as (v: string) => unknown) {
  const err = assertThrows(() => parse(value), TofuError);
  assertEquals(err.status, Status.invalidAddress);
  // Control characters are shown escaped: the text stays one line.
  // deno-lint-ignore no-control-regex
  const shown = String(value).replace(/[\x00-\x1f\x7f]/g, (c) => JSON.stringify(c).slice(1, -1));
  assertEquals(err.message, `Cannot parse address "${shown}": ${reason}`);
}

Deno.test("parseAddress refuses each malformed value with its reason", () => {
  refused(42 as unknown as string, "not a string");
  refused(undefined as unknown as string, "not a string");
  refused("tcp|h", "expected tcp|HOST|PORT");
  refused("tcp|h|1|2", "expected tcp|HOST|PORT");
  refused("tcp||80", "the host is empty");
  refused("tcp|h|", "the port is not a number 0..65535");
  refused("tcp|h|65536", "the port is not a number 0..65535");
  refused("tcp|h|123456", "the port is not a number 0..65535");
  refused("tcp|h|-1", "the port is not a number 0..65535");
  refused("tcp|h|8a", "the port is not a number 0..65535");
  refused("uds", "expected uds|PATH");
  refused("uds|/a|b", "expected uds|PATH");
  refused("uds|", "the path is empty");
  refused("uds|/tmp/a\0b", "the path contains NUL");
  // Before: listen() and connect() failed on the header first, with an internal text
  // ("Cannot append header \"~listen_on\": ...") holding the raw line break (found by the
  // hostile-tester helper).
  refused("uds|/tmp/new\nline.sock", "it contains a line break");
  refused("tcp|h\r|1", "it contains a line break");
  refused(`uds|/${"p".repeat(MAX_UDS_PATH_BYTES)}`, "the path is longer than 107 bytes");
  refused("udp|h|1", "the transport must be tcp, uds or isolate");
  refused("xyz|/a", "the transport must be tcp, uds or isolate");
  refused("", "the transport must be tcp, uds or isolate");
  refused("TCP|h|1", "the transport must be tcp, uds or isolate");
});

Deno.test("parseAddress accepts the boundaries: port 0 and 65535, a path of exactly 107 bytes", () => {
  assertEquals(parseAddress("tcp|h|0"), { transport: "tcp", host: "h", port: 0 });
  assertEquals(parseAddress("tcp|h|65535"), { transport: "tcp", host: "h", port: 65535 });
  assertEquals(parseAddress("tcp|::1|00080"), { transport: "tcp", host: "::1", port: 80 });
  assertEquals(MAX_UDS_PATH_BYTES, 107);
  const path = `/${"p".repeat(106)}`;
  assertEquals(parseAddress(`uds|${path}`), { transport: "uds", path });
  // The limit is in UTF-8 bytes, not characters: 54 two-byte characters are 108 bytes.
  refused(`uds|${"\u00e9".repeat(54)}`, "the path is longer than 107 bytes");
  const ok = `/${"\u00e9".repeat(53)}`; // 107 bytes
  assertEquals(parseAddress(`uds|${ok}`), { transport: "uds", path: ok });
});

Deno.test("Each parse() refuses the other transport", () => {
  refused("uds|/tmp/x", "not a tcp address", TcpClientAddress.parse);
  refused("uds|/tmp/x", "not a tcp address", TcpServerAddress.parse);
  refused("tcp|h|1", "not a uds address", UdsClientAddress.parse);
  refused("tcp|h|1", "not a uds address", UdsServerAddress.parse);
  refused("tcp|h", "expected tcp|HOST|PORT", TcpClientAddress.parse);
  refused("uds|", "the path is empty", UdsServerAddress.parse);
  assertEquals(TcpServerAddress.parse("tcp|0.0.0.0|9").toString(), "tcp|0.0.0.0|9");
  assertEquals(UdsServerAddress.parse("uds|/tmp/s").path, "/tmp/s");
});

Deno.test("Address constructors: defaults, and TypeError/RangeError with the reason", () => {
  assertEquals(new TcpClientAddress().toString(), "tcp|127.0.0.1|7099");
  assertEquals(new TcpServerAddress().toString(), "tcp|127.0.0.1|7099");
  const text = (what: string) =>
    `Cannot make address: the ${what} must be non-empty, without '|', CR or LF`;
  for (const host of ["", "a|b", "a\rb", "a\nb", 7 as unknown as string]) {
    assertEquals(
      assertThrows(() => new TcpClientAddress(host, 1), TypeError).message,
      text("host"),
    );
    assertEquals(
      assertThrows(() => new TcpServerAddress(host, 1), TypeError).message,
      text("host"),
    );
  }
  for (const path of ["", "/a|b", "/a\nb", "/a\rb"]) {
    assertEquals(assertThrows(() => new UdsClientAddress(path), TypeError).message, text("path"));
    assertEquals(assertThrows(() => new UdsServerAddress(path), TypeError).message, text("path"));
  }
  for (const port of [-1, 65536, 1.5, NaN]) {
    const message = `Cannot make address: port ${port} is not an integer 0..65535`;
    assertEquals(assertThrows(() => new TcpClientAddress("h", port), RangeError).message, message);
    assertEquals(assertThrows(() => new TcpServerAddress("h", port), RangeError).message, message);
  }
  assertEquals(new TcpClientAddress("h", 0).port, 0);
  assertEquals(new TcpServerAddress("h", 65535).port, 65535);
});
