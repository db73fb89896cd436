import { type FrameCodec, FrameType, type RelayErrorCode } from '@wsrelay/protocol';
import { truncateUtf8 } from '../internal/utf8.js';

/** Longest ERROR message the relay sends, in UTF-8 bytes (well under every node's header string bound). */
const MAX_ERROR_MESSAGE_BYTES = 1024;

/** Where an answer goes: a session, or a node of this relay. */
export interface Recipient {
  send(bytes: Uint8Array): void;
}

/** The relay's answers to a node: ERROR and ACK frames, encoded once here. */
export class Replies {
  constructor(readonly codec: FrameCodec) {}

  error(to: Recipient, id: number, code: RelayErrorCode | string, message: string): void {
    to.send(this.errorFrame(id, code, message));
  }

  /** An encoded ERROR. Messages quote peer input only in bounded form; this is the backstop that keeps it decodable by every node. */
  errorFrame(id: number, code: RelayErrorCode | string, message: string): Uint8Array {
    return this.codec.encode({ type: FrameType.Error, id, code, message: truncateUtf8(message, MAX_ERROR_MESSAGE_BYTES) });
  }

  ack(to: Recipient, id: number, recipients: number): void {
    to.send(this.codec.encode({ type: FrameType.Ack, id, recipients }));
  }
}
