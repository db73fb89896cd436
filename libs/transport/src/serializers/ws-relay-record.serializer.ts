import type { ReadPacket } from '@nestjs/microservices';
import type { ProducerSerializer } from '@nestjs/microservices';
import { WsRelayRecord, type WsRelayRecordOptions } from '../record-builders/ws-relay.record-builder.js';

/**
 * What a client serializer may return: a packet whose `data` is sent (and
 * `metadata`, when it has that key); `options`, when set, are laid over the
 * record's. Anything that is not such a packet is sent as the data itself.
 */
export interface WsRelaySerializedPacket extends ReadPacket {
  options?: WsRelayRecordOptions;
}

/**
 * The client's default serializer. The client unwraps a `WsRelayRecord`
 * before any serializer runs, so within the client this passes packets
 * through; on its own it still unwraps a record into data and options.
 */
export class WsRelayRecordSerializer implements ProducerSerializer {
  serialize(packet: ReadPacket): WsRelaySerializedPacket {
    const data: unknown = packet.data;
    if (data instanceof WsRelayRecord) {
      return { ...packet, data: data.data as unknown, options: data.options };
    }
    return packet;
  }
}
