/**
 * Protocol status codes and the error type that carries them.
 *
 * @module
 */

/**
 * The status codes of the tofu protocol (a `u8` in the binary header), by
 * camelCase name. {@linkcode statusName} gives the protocol spelling.
 *
 * @example Checking why a message came back
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Status } from "@tofu/tofu";
 *
 * const status: number = Status.channelClosed;
 * assertEquals(status, 22);
 * ```
 */
export const Status = {
  success: 0,
  notImplementedYet: 1,
  wrongAddress: 2,
  notAllowed: 3,
  nullMessage: 4,
  invalidMessage: 5,
  invalidOpCode: 6,
  invalidHeadersLen: 7,
  invalidBodyLen: 8,
  invalidMoreUsage: 9,
  invalidChannelNumber: 10,
  invelidMchnGroup: 11,
  invalidMessageId: 12,
  invalidAddress: 13,
  udsPathNotFound: 14,
  notificationDisabled: 15,
  notificationFailed: 16,
  peerDisconnected: 17,
  communicationFailed: 18,
  poolEmpty: 19,
  allocationFailed: 20,
  receiverUpdate: 21,
  channelClosed: 22,
  shutdownStarted: 23,
  connectFailed: 24,
  listenFailed: 25,
  acceptFailed: 26,
  sendFailed: 27,
  recvFailed: 28,
  setsockoptFailed: 29,
  processingFailed: 30,
  unknownError: 31,
} as const;

/** A status code name, such as `"channelClosed"`. */
export type StatusKey = keyof typeof Status;

const NAMES: readonly string[] = [
  "success",
  "not_implemented_yet",
  "wrong_address",
  "not_allowed",
  "null_message",
  "invalid_message",
  "invalid_op_code",
  "invalid_headers_len",
  "invalid_body_len",
  "invalid_more_usage",
  "invalid_channel_number",
  "invelid_mchn_group",
  "invalid_message_id",
  "invalid_address",
  "uds_path_not_found",
  "notification_disabled",
  "notification_failed",
  "peer_disconnected",
  "communication_failed",
  "pool_empty",
  "allocation_failed",
  "receiver_update",
  "channel_closed",
  "shutdown_started",
  "connect_failed",
  "listen_failed",
  "accept_failed",
  "send_failed",
  "recv_failed",
  "setsockopt_failed",
  "processing_failed",
  "unknown_error",
];

/**
 * Returns the protocol name of a status code, such as `"channel_closed"` for 22.
 * Every value from 31 up, and anything that is not a status, is `"unknown_error"`.
 *
 * @param status The status code.
 * @returns The snake_case name used by the protocol.
 *
 * @example Naming a status
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Status, statusName } from "@tofu/tofu";
 *
 * assertEquals(statusName(Status.poolEmpty), "pool_empty");
 * ```
 */
export function statusName(status: number): string {
  if (!Number.isInteger(status) || status < 0) return "unknown_error";
  return NAMES[status] ?? "unknown_error";
}

/**
 * The error thrown by tofu when the protocol refuses something: its
 * {@linkcode TofuError.status} is the protocol status that explains why.
 *
 * @example Catching an oversized body
 * ```ts
 * import { assertEquals, assertThrows } from "@std/assert";
 * import { Message, Status, TofuError } from "@tofu/tofu";
 *
 * const msg = new Message();
 * const err = assertThrows(() => msg.body.set(new Uint8Array(70_000)), TofuError);
 * assertEquals(err.status, Status.invalidBodyLen);
 * ```
 */
export class TofuError extends Error {
  /** The protocol status (see {@linkcode Status}). */
  readonly status: number;

  /**
   * Creates an error.
   *
   * @param status The protocol status.
   * @param message A `Cannot <action>: <reason>` sentence.
   * @param options Standard error options, such as the `cause`.
   */
  constructor(status: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TofuError";
    this.status = status;
  }

  /** The protocol name of {@linkcode TofuError.status}, such as `"channel_closed"`. */
  get statusName(): string {
    return statusName(this.status);
  }
}
