import type { ReadPacket } from '@nestjs/microservices';
import type { ProducerSerializer } from '@nestjs/microservices';
import { WsRelayRecord, type WsRelayRecordOptions } from '../record-builders/ws-relay.record-builder.js';

/** An outgoing packet as the client encodes it: data unwrapped, record options beside it. */
export interface WsRelaySerializedPacket extends ReadPacket {
  options?: WsRelayRecordOptions;
}

/** The client's default serializer: unwraps a `WsRelayRecord` into data and options. */
export class WsRelayRecordSerializer implements ProducerSerializer {
  serialize(packet: ReadPacket): WsRelaySerializedPacket {
    const data: unknown = packet.data;
    if (data instanceof WsRelayRecord) {
      return { ...packet, data: data.data as unknown, options: data.options };
    }
    return packet;
  }
}
