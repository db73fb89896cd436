/**
 * EventFanout for plain events (no handler acks): which subscribers of this relay get an event
 * (subject match, one member per queue group, the named node only), and the ACK with the number of
 * recipients. Handler acks: event-fanout.handler-acks.spec.ts; other relays:
 * event-fanout.other-relays.spec.ts.
 */
import { describe, expect, it } from '@jest/globals';
import { decodePayload, encodePayload, FrameType } from '@wsrelay/protocol';
import { fakeNode } from '../../spec-support/fakes.js';
import { event, eventsOf, fanoutFixture } from '../../spec-support/event-fanout-setup.js';

describe('EventFanout', () => {
  /** A fresh fan-out for each test, with fake timers (see fanoutFixture). */
  const t = fanoutFixture();

  describe('plain events', () => {
    it('go to every subscriber whose subject matches, with * for one token and > for the rest', () => {
      const star = t.subscriber('star', ['orders.*']);
      const rest = t.subscriber('rest', ['orders.>']);
      const exact = t.subscriber('exact', ['orders.created']);
      const region = t.subscriber('region', ['orders.*.eu']);
      const other = t.subscriber('other', ['users.>']);

      expect(t.fanout.publish(t.emitter, event(1, 'orders.created'))).toBe(3);
      expect([star, rest, exact, region, other].map(n => eventsOf(n).length)).toEqual([1, 1, 1, 0, 0]);

      expect(t.fanout.publish(t.emitter, event(2, 'orders.created.eu'))).toBe(2);
      expect([star, rest, exact, region, other].map(n => eventsOf(n).length)).toEqual([0, 1, 0, 1, 0]);

      // `>` needs at least one token after it.
      expect(t.fanout.publish(t.emitter, event(3, 'orders'))).toBe(0);
      expect(eventsOf(rest)).toEqual([]);
    });

    it('carry the emitter id, subject, payload and ext, as from the emitter, with no ack flags', () => {
      const sub = t.subscriber('sub', ['a.*']);
      const ext = encodePayload({ headers: { trace: 't1' } });
      t.fanout.publish(t.emitter, event(9, 'a.b', { ext }));
      const [frame] = eventsOf(sub);
      expect(frame).toEqual({
        type: FrameType.Event,
        id: 9,
        pattern: 'a.b',
        payload: encodePayload({ id: 9 }),
        peer: 'emitter',
        ext,
        claims: null,
      });
      expect(frame.flags).toBeUndefined();
      expect(frame.attempt).toBeUndefined();
      expect(decodePayload(frame.payload)).toEqual({ id: 9 });
    });

    it('are encoded once for all local recipients', () => {
      const [a, b, c] = ['a', 'b', 'c'].map(id => t.subscriber(id, ['x']));
      expect(t.fanout.publish(t.emitter, event(1, 'x'))).toBe(3);
      const [bytesA, bytesB, bytesC] = [a, b, c].map(n => n.session.socket.sent[0]);
      // The same encoded message under each (the socket got a view of it without its WebSocket header).
      for (const bytes of [bytesB, bytesC]) {
        expect(bytes.buffer).toBe(bytesA.buffer);
        expect(bytes.byteOffset).toBe(bytesA.byteOffset);
      }
    });

    it('reach a subscriber once however many of its patterns match', () => {
      const sub = t.subscriber('sub', ['x.*', 'x.>', 'x.y']);
      expect(t.fanout.publish(t.emitter, event(1, 'x.y'))).toBe(1);
      expect(eventsOf(sub)).toHaveLength(1);
    });

    it('go to one member per queue group, in turn, and to every plain subscriber', () => {
      const [g1, g2, g3] = ['g1', 'g2', 'g3'].map(id => t.subscriber(id, ['jobs'], 'g'));
      const [h1, h2] = ['h1', 'h2'].map(id => t.subscriber(id, ['jobs.>', 'jobs'], 'h'));
      const plain = t.subscriber('plain', ['jobs']);
      const counts = Array.from({ length: 6 }, (_, i) => t.fanout.publish(t.emitter, event(i + 1, 'jobs')));
      expect(counts).toEqual([3, 3, 3, 3, 3, 3]);
      expect([g1, g2, g3].map(n => eventsOf(n).map(f => f.id))).toEqual([
        [1, 4],
        [2, 5],
        [3, 6],
      ]);
      expect([h1, h2].map(n => eventsOf(n).map(f => f.id))).toEqual([
        [1, 3, 5],
        [2, 4, 6],
      ]);
      expect(eventsOf(plain)).toHaveLength(6);
    });

    it('reach nobody, and count 0, without a subscriber', () => {
      t.subscriber('elsewhere', ['y']);
      expect(t.fanout.publish(t.emitter, event(1, 'x'))).toBe(0);
    });

    it('skip and do not count a subscriber whose socket is closed', () => {
      const open = t.subscriber('open', ['x']);
      const closed = t.subscriber('closed', ['x']);
      closed.session.socket.close(1000);
      expect(t.fanout.publish(t.emitter, event(1, 'x'))).toBe(1);
      expect(eventsOf(open)).toHaveLength(1);
      expect(closed.session.socket.sent).toHaveLength(0);
    });

    it('stay in their tenant', () => {
      const elsewhere = fakeNode(t.worlds.ensure('t2'), { nodeId: 'far', events: ['x'] });
      t.worlds.get('t2')!.route(elsewhere);
      const here = t.subscriber('here', ['x']);
      expect(t.fanout.publish(t.emitter, event(1, 'x'))).toBe(1);
      expect(eventsOf(here)).toHaveLength(1);
      expect(elsewhere.session.socket.sent).toHaveLength(0);
    });
  });

  describe('targeted events (peer)', () => {
    it('go to the named node only, if it subscribes to the subject', () => {
      const target = t.subscriber('target', ['x.*']);
      const bystander = t.subscriber('bystander', ['x.*']);
      expect(t.fanout.publish(t.emitter, event(1, 'x.y', { peer: 'target' }))).toBe(1);
      expect(eventsOf(target)).toHaveLength(1);
      expect(eventsOf(bystander)).toHaveLength(0);
    });

    it('go to the named queue member whatever the group turn', () => {
      t.subscriber('q1', ['x'], 'g');
      const q2 = t.subscriber('q2', ['x'], 'g');
      expect(t.fanout.publish(t.emitter, event(1, 'x', { peer: 'q2' }))).toBe(1);
      expect(t.fanout.publish(t.emitter, event(2, 'x', { peer: 'q2' }))).toBe(1);
      expect(eventsOf(q2).map(f => f.id)).toEqual([1, 2]);
    });

    it('reach nobody when the named node does not subscribe to the subject, or is unknown', () => {
      const target = t.subscriber('target', ['other']);
      const bystander = t.subscriber('bystander', ['x']);
      expect(t.fanout.publish(t.emitter, event(1, 'x', { peer: 'target' }))).toBe(0);
      expect(t.fanout.publish(t.emitter, event(2, 'x', { peer: 'nobody' }))).toBe(0);
      expect(target.session.socket.sent).toHaveLength(0);
      expect(bystander.session.socket.sent).toHaveLength(0);
    });
  });

  describe('acknowledge', () => {
    it('ACKs with the number of recipients, 0 included', () => {
      t.fanout.acknowledge(t.emitter, 5, 3);
      t.fanout.acknowledge(t.emitter, 6, 0);
      expect(t.emitter.session.socket.take()).toEqual([
        { type: FrameType.Ack, id: 5, recipients: 3 },
        { type: FrameType.Ack, id: 6, recipients: 0 },
      ]);
    });

    it('sends nothing for id 0, nor while handler acks are awaited (recipients undefined)', () => {
      t.fanout.acknowledge(t.emitter, 0, 3);
      t.fanout.acknowledge(t.emitter, 7, undefined);
      expect(t.emitter.session.socket.sent).toHaveLength(0);
    });
  });
});
