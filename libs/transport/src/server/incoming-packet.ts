import type { Deserializer, ReadPacket } from '@nestjs/microservices';

/** An incoming request or event as the relay delivered it: the decoded payload is `data`; events have no `id`. */
export interface WsRelayIncoming {
  id?: string;
  pattern: string;
  data: unknown;
  metadata: ReadPacket['metadata'];
}

/**
 * Runs the strategy's deserializer on an incoming request or event, as Nest's
 * transports do for both. Synchronous when the deserializer is (Nest's is),
 * so the handler starts without an extra microtask; a deserializer that
 * returns no packet throws, and the caller refuses the message.
 */
export function deserializeIncoming(
  deserializer: Deserializer<unknown, unknown>,
  incoming: WsRelayIncoming,
): ReadPacket | Promise<ReadPacket> {
  const packet: unknown = deserializer.deserialize(incoming);
  return packet instanceof Promise ? packet.then(checked) : checked(packet);
}

function checked(packet: unknown): ReadPacket {
  if (typeof packet !== 'object' || packet === null) {
    throw new TypeError(`the deserializer returned ${packet === null ? 'null' : typeof packet}, not a packet`);
  }
  return packet as ReadPacket;
}
