import { WsRelayRecordSerializer } from '../serializers/ws-relay-record.serializer.js';
import { WsRelayRecord, WsRelayRecordBuilder } from './ws-relay.record-builder.js';

describe('WsRelayRecordBuilder', () => {
  it('builds a record with headers, node id and timeout', () => {
    const record = new WsRelayRecordBuilder({ a: 1 }).setHeaders({ x: '1' }).setHeaders({ y: '2' }).setNodeId('n').setTimeout(500).build();
    expect(record).toBeInstanceOf(WsRelayRecord);
    expect(record.data).toEqual({ a: 1 });
    expect(record.options).toEqual({ headers: { x: '1', y: '2' }, nodeId: 'n', timeoutMs: 500 });
  });

  it.each([0, -1, 1.5, 2 ** 31])('rejects timeout %p', ms => {
    expect(() => new WsRelayRecordBuilder(1).setTimeout(ms)).toThrow(TypeError);
  });

  it('is unwrapped by the default serializer', () => {
    const s = new WsRelayRecordSerializer();
    const record = new WsRelayRecordBuilder('d').setNodeId('n').build();
    expect(s.serialize({ pattern: 'p', data: record })).toEqual({ pattern: 'p', data: 'd', options: { nodeId: 'n' } });
    expect(s.serialize({ pattern: 'p', data: 'plain' })).toEqual({ pattern: 'p', data: 'plain' });
  });
});
