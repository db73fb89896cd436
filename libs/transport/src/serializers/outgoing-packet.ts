import type { ProducerSerializer, ReadPacket } from '@nestjs/microservices';
import { WsRelayRecord, type WsRelayRecordOptions } from '../record-builders/ws-relay.record-builder.js';

/** What the client sends for one `send()` / `emit()`: the payload and metadata, and the record's options. */
export interface WsRelayOutgoing {
  /** Encoded as the frame's payload. */
  data: unknown;
  metadata: ReadPacket['metadata'];
  /** Node id, headers, timeout and ack: never seen by the serializer, so no serializer can lose them. */
  options: WsRelayRecordOptions;
}

const NO_OPTIONS: WsRelayRecordOptions = Object.freeze({});

/**
 * Runs the client's serializer as Nest's transports do, on the packet
 * (`pattern`, `data`, `metadata`), with a `WsRelayRecord` unwrapped first: the
 * serializer sees the record's data, and the record's options are kept aside.
 *
 * A serializer that returns a packet (an object with `data`) has its `data`
 * sent, its `metadata` when it has that key, and its `options` laid over the
 * record's (as Nest's RMQ record serializer returns them). Anything else it
 * returns (a string, bytes, a number) is sent as the data itself.
 */
export function serializeOutgoing(serializer: ProducerSerializer, packet: ReadPacket): WsRelayOutgoing {
  const record = packet.data instanceof WsRelayRecord ? (packet.data as WsRelayRecord) : undefined;
  const plain: ReadPacket = record === undefined ? packet : { ...packet, data: record.data };
  const recordOptions = record?.options ?? NO_OPTIONS;
  const out: unknown = serializer.serialize(plain);
  if (out instanceof Promise) {
    // Nest's clients use serialize()'s result synchronously too; a promise would be sent as `{}`.
    throw new TypeError('WsRelayClient: the serializer returned a Promise; serialize() must return its result synchronously');
  }
  if (!isPacket(out)) return { data: out, metadata: plain.metadata, options: recordOptions };
  const extra = (out as { options?: unknown }).options;
  return {
    data: out.data,
    metadata: 'metadata' in out ? out.metadata : plain.metadata,
    options: isObject(extra) ? { ...recordOptions, ...extra } : recordOptions,
  };
}

function isPacket(value: unknown): value is ReadPacket {
  return isObject(value) && 'data' in value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}
