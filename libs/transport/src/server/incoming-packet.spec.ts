/**
 * The strategy's custom deserializer was skipped for events; requests and
 * events now both go through deserializeIncoming (checked end to end in
 * test/serializers.e2e-spec.ts). What it does on its own is pinned here.
 */
import 'reflect-metadata';
import type { Deserializer, ReadPacket } from '@nestjs/microservices';
import { IncomingRequestDeserializer } from '@nestjs/microservices/deserializers/incoming-request.deserializer.js';
import { deserializeIncoming } from './incoming-packet.js';

describe('deserializeIncoming', () => {
  const event = { pattern: 'orders.created', data: { n: 1 }, metadata: { trace: 't' } };

  it("keeps Nest's default deserializer synchronous and the packet as it is", () => {
    expect(deserializeIncoming(new IncomingRequestDeserializer(), event)).toBe(event);
  });

  it('gives a custom deserializer the packet and returns what it makes of it, sync or async', async () => {
    const unwrap = (p: ReadPacket) => ({ ...p, data: (p.data as { n: number }).n });
    expect(deserializeIncoming({ deserialize: unwrap }, event)).toEqual({ ...event, data: 1 });
    await expect(deserializeIncoming({ deserialize: async (p: ReadPacket) => unwrap(p) }, event)).resolves.toEqual({ ...event, data: 1 });
  });

  it('refuses what is not a packet, so the message is refused instead of reaching the handler', async () => {
    // The strategy's option is a plain Nest `Deserializer`: nothing stops one from returning no packet.
    const nothing: Deserializer<unknown, unknown> = { deserialize: () => undefined };
    const asyncNull: Deserializer<unknown, unknown> = { deserialize: async () => null };
    expect(() => deserializeIncoming(nothing, event)).toThrow(/returned undefined, not a packet/);
    await expect(deserializeIncoming(asyncNull, event)).rejects.toThrow(/returned null, not a packet/);
  });
});
