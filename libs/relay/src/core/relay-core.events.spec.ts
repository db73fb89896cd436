/**
 * RelayCore, two relays on one in-memory hub, events across them: delivered to subscribers on both
 * relays and counted in the ACK, and with handler acks, ACKed or failed (HANDLER_FAILED) once the
 * handlers on both relays answered, a queue copy moving to the other relay when its member leaves.
 * Calls: relay-core.calls.spec.ts.
 */
import { describe, expect, it } from '@jest/globals';
import { encodePayload, type ErrorFrame, errorFromFrame, EventFlag, type EventFrame, FrameType, RelayErrorCode } from '@wsrelay/protocol';
import { connect, disconnect, event, framesOf, seen, twoRelays, turns, until } from '../../spec-support/relay-core-setup.js';

describe('RelayCore: two relays on one in-memory hub', () => {
  /** Relays A and B, started, each knowing the other (torn down after each test). */
  const pair = twoRelays();

  it('delivers an event from a node on A to subscribers on both relays, and counts them in the ACK', async () => {
    const [a, b] = await pair();
    const emitter = connect(a, 'emitter');
    const local = connect(a, 'local', { events: ['orders.>'] });
    const remote = connect(b, 'remote', { events: ['orders.*'] });
    connect(b, 'other', { events: ['users.*'] });
    await seen(a, 'remote');

    const recipients = a.publish(emitter.session, event(5, 'orders.created', { id: 42 }));
    expect(recipients).toBe(2);
    expect(framesOf(emitter, FrameType.Ack)).toEqual([{ type: FrameType.Ack, id: 5, recipients: 2 }]);
    const expected = {
      type: FrameType.Event,
      id: 5,
      pattern: 'orders.created',
      payload: encodePayload({ id: 42 }),
      peer: 'emitter',
      ext: null,
      claims: null,
    };
    expect(framesOf(local, FrameType.Event)).toEqual([expected]);
    await until('the event on B', () => framesOf(remote, FrameType.Event).length === 1);
    expect(framesOf(remote, FrameType.Event)).toEqual([expected]);

    // Targeted at the node on B: only it gets the event.
    expect(a.publish(emitter.session, event(6, 'orders.paid', null, { peer: 'remote' }))).toBe(1);
    await until('the targeted event on B', () => framesOf(remote, FrameType.Event).length === 2);
    expect(framesOf(remote, FrameType.Event)[1]).toMatchObject({ id: 6, pattern: 'orders.paid', peer: 'emitter' });
    expect(framesOf(local, FrameType.Event)).toHaveLength(1);
  });

  it('ACKs an event with handler acks once the handlers on both relays have answered', async () => {
    const [a, b] = await pair();
    const emitter = connect(a, 'emitter');
    const local = connect(a, 'local', { events: ['jobs'] });
    const remote = connect(b, 'remote', { events: ['jobs'] });
    await seen(a, 'remote');

    const recipients = a.publish(emitter.session, event(6, 'jobs', 'work', { flags: EventFlag.ACK_HANDLERS, timeoutMs: 5000 }));
    expect(recipients).toBeUndefined();
    await until('the copy on B', () => framesOf(remote, FrameType.Event).length === 1);
    const [localCopy] = framesOf<EventFrame>(local, FrameType.Event);
    const [remoteCopy] = framesOf<EventFrame>(remote, FrameType.Event);
    for (const copy of [localCopy, remoteCopy]) {
      expect(copy).toMatchObject({ pattern: 'jobs', peer: 'emitter', flags: EventFlag.ACK_HANDLERS, attempt: 1 });
    }
    expect([a.diagnostics().eventCopies, b.diagnostics().eventCopies]).toEqual([2, 1]);

    a.handled(local.session, { type: FrameType.Handled, id: localCopy.id, error: null });
    b.handled(remote.session, { type: FrameType.Handled, id: remoteCopy.id, error: null });
    await until('the ACK', () => framesOf(emitter, FrameType.Ack).length > 0);
    expect(emitter.socket.take().filter(f => f.type !== FrameType.Welcome)).toEqual([{ type: FrameType.Ack, id: 6, recipients: 2 }]);
    expect([a.diagnostics().eventCopies, b.diagnostics().eventCopies]).toEqual([0, 0]);
  });

  it('reports a handler that threw on B to the emitter on A as HANDLER_FAILED, with its error', async () => {
    const [a, b] = await pair();
    const emitter = connect(a, 'emitter');
    const remote = connect(b, 'remote', { events: ['jobs'] });
    await seen(a, 'remote');
    a.publish(emitter.session, event(7, 'jobs', 'work', { flags: EventFlag.ACK_HANDLERS, timeoutMs: 5000 }));
    await until('the copy on B', () => framesOf(remote, FrameType.Event).length === 1);
    const [copy] = framesOf<EventFrame>(remote, FrameType.Event);
    b.handled(remote.session, { type: FrameType.Handled, id: copy.id, error: encodePayload({ message: 'boom' }) });
    await until('the answer', () => framesOf(emitter, FrameType.Error).length > 0);
    const [answer] = framesOf<ErrorFrame>(emitter, FrameType.Error);
    const err = errorFromFrame(answer);
    expect([answer.id, err.code]).toEqual([7, RelayErrorCode.HANDLER_FAILED]);
    expect(err.details).toEqual([{ nodeId: 'remote', code: 'HANDLER_ERROR', error: { message: 'boom' } }]);
    expect(framesOf(emitter, FrameType.Ack)).toEqual([]);
  });

  it('moves a handler-acked copy to a queue member on A when the member on B it went to leaves', async () => {
    const [a, b] = await pair();
    const emitter = connect(a, 'emitter');
    // B's member first in A's index, so that it gets the first copy.
    const onB = connect(b, 'on-b', { events: ['jobs'], queue: 'g' });
    await seen(a, 'on-b');
    const onA = connect(a, 'on-a', { events: ['jobs'], queue: 'g' });
    a.publish(emitter.session, event(8, 'jobs', 'work', { flags: EventFlag.ACK_HANDLERS, timeoutMs: 5000 }));
    await until('the copy on B', () => framesOf(onB, FrameType.Event).length === 1);
    expect(framesOf(onA, FrameType.Event)).toEqual([]);

    disconnect(b, onB);
    await until('the copy moved to A', () => framesOf(onA, FrameType.Event).length === 1);
    const [moved] = framesOf<EventFrame>(onA, FrameType.Event);
    expect(moved).toMatchObject({ pattern: 'jobs', peer: 'emitter', flags: EventFlag.ACK_HANDLERS, attempt: 2 });
    a.handled(onA.session, { type: FrameType.Handled, id: moved.id, error: null });
    expect(framesOf(emitter, FrameType.Ack)).toEqual([{ type: FrameType.Ack, id: 8, recipients: 1 }]);
    await turns();
    expect([a.diagnostics().eventCopies, b.diagnostics().eventCopies]).toEqual([0, 0]);
  });
});
