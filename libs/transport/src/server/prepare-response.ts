import type { LoggerService } from '@nestjs/common';
import type { Serializer, WritePacket } from '@nestjs/microservices';
import { encodePayload, encodePayloadTransient, ResponseFlag } from '@wsrelay/protocol';
import type { PreparedResponse } from './response-stream.js';

/** What a handler failure the caller must not see in detail is sent as (Nest's own wording). */
export const INTERNAL_ERROR = { status: 'error', message: 'Internal server error' } as const;

const FAILED: () => PreparedResponse = () => ({ flags: ResponseFlag.ERROR | ResponseFlag.DONE, payload: encodePayload(INTERNAL_ERROR) });

/**
 * A packet of request `id`'s answer as its RESPONSE's flags and payload: run
 * through `serializer` (none: Nest's pass-through one), then encoded (`keep`:
 * in a buffer of its own, to be sent later; else the encoder's scratch
 * buffer, to be sent at once). Never throws: a serializer that throws or
 * returns no packet, or a value MessagePack cannot encode, makes the call
 * fail with INTERNAL_ERROR, and `logger` says why.
 */
export function prepareResponse(
  serializer: Serializer | undefined,
  id: number,
  packet: WritePacket,
  keep: boolean,
  logger: LoggerService,
): PreparedResponse {
  let out: unknown;
  try {
    out = serializer === undefined ? packet : serializer.serialize({ ...packet, id: String(id) });
  } catch (err) {
    logger.error(`The serializer failed on the response to request ${id}: ${(err as Error).message}`);
    return FAILED();
  }
  if (typeof out !== 'object' || out === null) {
    // Sent as it is by Nest's TCP server; here a packet's fields make the frame, so the call fails at once.
    logger.error(
      `The serializer returned ${out === null ? 'null' : typeof out} for request ${id}, not a packet ({ response, err, isDisposed })`,
    );
    return FAILED();
  }
  const { err, response, isDisposed } = out as { err?: unknown; response?: unknown; isDisposed?: boolean };
  const isError = err !== undefined && err !== null;
  const encode = keep ? encodePayload : encodePayloadTransient;
  try {
    const payload = isError ? encode(err) : response !== undefined ? encode(response) : null;
    return { flags: isError ? ResponseFlag.ERROR | ResponseFlag.DONE : isDisposed ? ResponseFlag.DONE : 0, payload };
  } catch (e) {
    logger.error(`Response to request ${id} cannot be encoded as MessagePack: ${(e as Error).message}`);
    return FAILED();
  }
}

/** A failed event handler's error as HANDLED carries it: as Nest made it, an Error hidden as INTERNAL_ERROR; null when it did not fail. */
export function handlerError(failure: unknown): Uint8Array | null {
  if (failure === undefined) return null;
  try {
    return encodePayload(failure instanceof Error ? INTERNAL_ERROR : failure);
  } catch {
    return encodePayload(INTERNAL_ERROR);
  }
}
