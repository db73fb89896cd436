/**
 * A custom client serializer used to receive the WsRelayRecord itself and,
 * replacing it, lose the record's node id, headers, timeout and ack: the
 * record is now unwrapped before the serializer runs and its options kept aside.
 */
import type { ReadPacket } from '@nestjs/microservices';
import { WsRelayRecordBuilder } from '../record-builders/ws-relay.record-builder.js';
import { serializeOutgoing } from './outgoing-packet.js';
import { WsRelayRecordSerializer } from './ws-relay-record.serializer.js';

/** Wraps the data, as a user's serializer would, and keeps what it was given. */
function wrapping() {
  const seen: ReadPacket[] = [];
  const serialize = (p: ReadPacket) => {
    seen.push(p);
    const wrapped: unknown = p.data;
    return { pattern: p.pattern as string, data: { wrapped } };
  };
  return { seen, serialize };
}

describe('serializeOutgoing', () => {
  const record = new WsRelayRecordBuilder({ n: 1 })
    .setNodeId('p2')
    .setHeaders({ tenant: 'acme' })
    .setTimeout(250)
    .setAck('handlers')
    .build();
  const options = { nodeId: 'p2', headers: { tenant: 'acme' }, timeoutMs: 250, ack: 'handlers' };

  it("gives the serializer the record's data, never the record, and keeps every record option", () => {
    const s = wrapping();
    const out = serializeOutgoing(s, { pattern: 'p', data: record, metadata: { trace: 't' } });
    expect(s.seen).toEqual([{ pattern: 'p', data: { n: 1 }, metadata: { trace: 't' } }]);
    expect(out).toEqual({ data: { wrapped: { n: 1 } }, metadata: { trace: 't' }, options });
  });

  it('sends what a serializer returns that is not a packet as the data itself', () => {
    const out = serializeOutgoing({ serialize: (p: ReadPacket) => JSON.stringify(p.data) }, { pattern: 'p', data: record });
    expect(out).toEqual({ data: '{"n":1}', metadata: undefined, options });
    const bytes = Uint8Array.of(1, 2);
    expect(serializeOutgoing({ serialize: () => bytes }, { pattern: 'p', data: 1 }).data).toBe(bytes);
    expect(serializeOutgoing({ serialize: () => [1, { data: 2 }] }, { pattern: 'p', data: 1 }).data).toEqual([1, { data: 2 }]);
  });

  it("lays a serializer's own options over the record's, and lets it set or clear metadata", () => {
    const serializer = { serialize: (p: ReadPacket) => ({ ...p, metadata: undefined, options: { headers: { by: 'serializer' } } }) };
    const out = serializeOutgoing(serializer, { pattern: 'p', data: record, metadata: { trace: 't' } });
    expect(out).toEqual({ data: { n: 1 }, metadata: undefined, options: { ...options, headers: { by: 'serializer' } } });
  });

  it('is a pass-through with the default serializer, record or not', () => {
    const s = new WsRelayRecordSerializer();
    expect(serializeOutgoing(s, { pattern: 'p', data: record })).toEqual({ data: { n: 1 }, metadata: undefined, options });
    expect(serializeOutgoing(s, { pattern: 'p', data: 'plain' })).toEqual({ data: 'plain', metadata: undefined, options: {} });
  });

  it('refuses a serializer that answers with a promise (it would go out as `{}`)', () => {
    expect(() => serializeOutgoing({ serialize: async (p: ReadPacket) => p }, { pattern: 'p', data: 1 })).toThrow(/synchronously/);
  });
});
