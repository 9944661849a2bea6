/**
 * tofu for Deno: asynchronous peer-to-peer messaging over TCP and Unix sockets,
 * byte-compatible with the tofu wire protocol (see `docs/protocol.md`).
 *
 * A message is a 16-byte binary header, optional `name:value` text headers and an
 * optional body. Two layers share it:
 *
 * - the Peers layer ({@linkcode connect}, {@linkcode listen}, {@linkcode serve},
 *   {@linkcode Channel}): one object per connected peer, requests correlated by message
 *   id, `more` streams as iterables, reconnects;
 * - the engine layer ({@linkcode Engine}, {@linkcode ChannelGroup}): you post messages
 *   (it never blocks) and receive everything, peer frames and the engine's own reports,
 *   from one queue per group. The Peers layer is built on it and nothing else.
 *
 * @example Request and response with the Peers layer
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { connect, serve } from "@tofu/tofu";
 *
 * await using server = await serve("tcp|127.0.0.1|0", (req) => req.body.text().toUpperCase());
 * await using ch = await connect(server.address);
 * using reply = await ch.request("ping");
 * assertEquals(reply.body.text(), "PING");
 * ```
 *
 * @example The same exchange on the engine layer
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Engine, OpCode, TcpClientAddress, TcpServerAddress } from "@tofu/tofu";
 *
 * await using engine = new Engine();
 * const server = engine.create();
 * server.post(new TcpServerAddress("127.0.0.1", 0).format(engine.get("always")));
 * const welcome = (await server.waitReceive(5000))!;
 * const bound = welcome.headers.get("~listen_on")!;
 * engine.put(welcome);
 *
 * const client = engine.create();
 * const { channelNumber } = client.post(TcpClientAddress.parse(bound).format(engine.get("always")));
 * const req = engine.get("always");
 * req.bhdr.channelNumber = channelNumber;
 * req.bhdr.opCode = OpCode.Request;
 * req.body.set("ping");
 * client.post(req); // written after the HelloRequest
 *
 * const hello = (await server.waitReceive(5000))!; // the client's HelloRequest
 * hello.bhdr.opCode = OpCode.HelloResponse;
 * server.post(hello);
 * const ping = (await server.waitReceive(5000))!;
 * ping.bhdr.opCode = OpCode.Response; // echo it back: same id, same body
 * server.post(ping);
 * engine.put(await client.waitReceive(5000)); // the HelloResponse
 * using pong = await client.waitReceive(5000);
 * assertEquals(pong?.body.text(), "ping");
 * ```
 *
 * @module
 */

export { Engine, type EngineOptions } from "./src/engine.ts";
export {
  ChannelGroup,
  DEFAULT_LOW_WATER_BYTES,
  type ReadyOptions,
  type WaitReceiveOptions,
} from "./src/channel_group.ts";
export { Message } from "./src/message.ts";
export { BinaryHeader } from "./src/binary_header.ts";
export { TextHeaders } from "./src/text_headers.ts";
export { Body } from "./src/body.ts";
export { OpCode, opCodeName } from "./src/opcode.ts";
export { Status, statusName, TofuError } from "./src/status.ts";
export {
  IsolateClientAddress,
  IsolateServerAddress,
  TcpClientAddress,
  TcpServerAddress,
  UdsClientAddress,
  UdsServerAddress,
} from "./src/address.ts";
export {
  decodeFrame,
  encodeFrame,
  encodeFrameInto,
  FrameDecoder,
  type FrameDecoderOptions,
  FrameDecoderStream,
  FrameEncoderStream,
  frameLength,
} from "./src/codec.ts";
export type { AllocationStrategy } from "./src/engine.ts";
export {
  Channel,
  type Chunk,
  type ChunksOptions,
  ERROR_MESSAGE_HEADER,
  ERROR_STATUS_HEADER,
  MAX_LENT_MSGS,
  MAX_OPEN_STREAMS,
  type Payload,
  type ReconnectOptions,
  type RequestOptions,
  type RespondOptions,
  type SendOptions,
  type UnsentHandler,
} from "./src/channel.ts";
export { connect, type ConnectOptions } from "./src/connect.ts";
export {
  IsolateLink,
  isolateListening,
  type LinkEnd,
  linkParent,
  linkWorker,
} from "./src/workers.ts";
export { serveWorkers, type ServeWorkersOptions, WorkerServer } from "./src/serve_workers.ts";
export { listen, Listener, type ListenOptions } from "./src/listener.ts";
export { type Handler, type Reply, serve, type ServeOptions, Server } from "./src/server.ts";
