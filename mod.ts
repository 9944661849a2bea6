/**
 * tofu for Deno: asynchronous peer-to-peer messaging over TCP and Unix sockets,
 * byte-compatible with the tofu wire protocol.
 *
 * A message is a 16-byte binary header, optional `name:value` text headers and an
 * optional body. You post messages to a {@linkcode ChannelGroup} (it never blocks) and
 * receive everything (peer frames and the engine's own reports) from the group's
 * one queue with {@linkcode ChannelGroup.waitReceive}.
 *
 * @example Echo over TCP in one process
 * ```ts ignore
 * import { Engine, OpCode, TcpClientAddress, TcpServerAddress } from "@tofu/tofu";
 *
 * await using engine = new Engine();
 * const server = engine.create();
 * server.post(new TcpServerAddress("127.0.0.1", 0).format(engine.get("always")!));
 * const welcome = (await server.waitReceive())!;
 * const port = Number(welcome.headers.get("~listen_on")!.split("|")[2]);
 * engine.put(welcome);
 *
 * const client = engine.create();
 * const hello = new TcpClientAddress("127.0.0.1", port).format(engine.get("always")!);
 * const { channelNumber } = client.post(hello);
 *
 * const req = engine.get("always")!;
 * req.bhdr.channelNumber = channelNumber;
 * req.bhdr.opCode = OpCode.Request;
 * req.body.set("ping");
 * client.post(req);
 * ```
 *
 * @module
 */

export { Engine, type EngineOptions } from "./src/engine.ts";
export { ChannelGroup, type WaitReceiveOptions } from "./src/channel_group.ts";
export { Message } from "./src/message.ts";
export { BinaryHeader } from "./src/binary_header.ts";
export { TextHeaders } from "./src/text_headers.ts";
export { Body } from "./src/body.ts";
export { OpCode, opCodeName } from "./src/opcode.ts";
export { Status, statusName, TofuError } from "./src/status.ts";
export {
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
export type { AllocationStrategy } from "./src/pool.ts";
export {
  Channel,
  type Chunk,
  ERROR_MESSAGE_HEADER,
  ERROR_STATUS_HEADER,
  type Payload,
  type ReconnectOptions,
  type RequestOptions,
  type RespondOptions,
  type SendOptions,
} from "./src/channel.ts";
export { connect, type ConnectOptions } from "./src/connect.ts";
export { listen, Listener, type ListenOptions } from "./src/listener.ts";
export { type Handler, type Reply, serve, type ServeOptions, Server } from "./src/server.ts";
