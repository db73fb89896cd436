import { describe, expect, it } from '@jest/globals';
import { encodePayload, FrameCodec, FrameType, RelayErrorCode } from '@wsrelay/protocol';
import { outcomeOf, refusalReasonOf } from './codes.js';
import { LatencyBuckets } from './latency-buckets.js';
import { EventDrop, RefusalReason, type RelayLifecycleListener, RequestOutcome } from './relay-observer.js';
import { frameTypeOf, RelayTally } from './relay-tally.js';

const codec = new FrameCodec({ webSocketHeader: true });
const sender = { sessionId: 's1' };

describe('frameTypeOf', () => {
  it('reads the type of every frame the relay writes, whatever its WebSocket header and however it is split', () => {
    const small = codec.encode({ type: FrameType.Ack, id: 7, recipients: 1 });
    // 126 ≤ length < 64 KiB: a 4-byte header; past 64 KiB: a 10-byte one.
    const medium = codec.encode({ type: FrameType.Error, id: 1, code: 'BAD_FRAME', message: 'x'.repeat(300) });
    const response = (bytes: number) =>
      codec.encodeMessage({ type: FrameType.Response, id: 1, flags: 1, payload: encodePayload(new Uint8Array(bytes)) });
    expect(medium[1]).toBe(126);
    expect(frameTypeOf(small)).toBe(FrameType.Ack);
    expect(frameTypeOf(medium)).toBe(FrameType.Error);
    expect(frameTypeOf(response(10))).toBe(FrameType.Response);
    // A large payload travels as pieces: the type is in the first.
    const large = response(100_000);
    expect(Array.isArray(large)).toBe(true);
    expect(frameTypeOf(large)).toBe(FrameType.Response);
  });

  it('is 0 for bytes that are not a frame with a header', () => {
    expect(frameTypeOf(new Uint8Array([]))).toBe(0);
    expect(frameTypeOf(new Uint8Array([0x82, 0x01, 0x00]))).toBe(0);
    expect(frameTypeOf([])).toBe(0);
  });
});

describe('RelayTally', () => {
  it('counts frames in and out by type, and refusals by stage and reason', () => {
    const tally = new RelayTally();
    tally.frameIn(FrameType.Request);
    tally.frameIn(FrameType.Request);
    tally.frameOut(codec.encode({ type: FrameType.Pong }));
    tally.frameRefused(RefusalReason.Size, RelayErrorCode.PAYLOAD_TOO_LARGE, 'too big', sender);
    tally.connectionRefused({ reason: RefusalReason.Auth, status: 401, code: RelayErrorCode.UNAUTHORIZED, message: 'no', address: 'a' });
    expect(tally.framesIn[FrameType.Request]).toBe(2);
    expect(tally.framesOut[FrameType.Pong]).toBe(1);
    expect(tally.refusals(1, RefusalReason.Size)).toBe(1);
    expect(tally.refusals(0, RefusalReason.Auth)).toBe(1);
    expect(tally.refusals(0, RefusalReason.Size)).toBe(0);
  });

  it('counts requests by outcome, the routed ones also by duration', () => {
    const tally = new RelayTally();
    tally.requestRouted();
    tally.requestSettled(RequestOutcome.Ok, performance.now() - 3);
    tally.requestFailed(RequestOutcome.MicroserviceOffline);
    expect(tally.routed).toBe(1);
    expect(tally.requests[RequestOutcome.Ok]).toBe(1);
    expect(tally.requests[RequestOutcome.MicroserviceOffline]).toBe(1);
    const { cumulative, sumSeconds } = tally.durations.read();
    expect(cumulative.at(-1)).toBe(1);
    expect(sumSeconds).toBeGreaterThanOrEqual(0.003);
  });

  it('keeps open connections by the role they connected as', () => {
    const tally = new RelayTally();
    tally.connectionAccepted({ role: 'server', session: 'a', subject: null, address: undefined });
    tally.connectionAccepted({ role: 'client', session: 'b', subject: null, address: undefined });
    tally.connectionClosed('server');
    expect([...tally.open]).toEqual([1, 0]);
    expect([...tally.opened]).toEqual([1, 1]);
  });

  it('passes lifecycle points to its listeners, until they stop listening; one that throws harms nothing', () => {
    const tally = new RelayTally();
    const heard: string[] = [];
    const listener: RelayLifecycleListener = {
      nodeAnnounced: n => heard.push(`announced ${n.nodeId}`),
      frameRefused: (reason, code) => heard.push(`refused ${reason} ${code}`),
      backplaneDown: b => heard.push(`down ${b.why}`),
    };
    const broken: RelayLifecycleListener = {
      nodeAnnounced: () => {
        throw new Error('log failed');
      },
      frameRefused: () => {
        throw new Error('log failed');
      },
    };
    tally.listen(broken);
    const stop = tally.listen(listener);
    tally.nodeAnnounced({ nodeId: 'n1', tenant: '', role: 'server', patterns: 1, subscriptions: 0, queue: null });
    tally.frameRefused(RefusalReason.BadFrame, RelayErrorCode.BAD_FRAME, 'bad', sender);
    tally.backplaneDown({ backplane: 'redis', why: 'gone' });
    stop();
    tally.nodeAnnounced({ nodeId: 'n2', tenant: '', role: 'server', patterns: 1, subscriptions: 0, queue: null });
    expect(heard).toEqual(['announced n1', `refused ${RefusalReason.BadFrame} BAD_FRAME`, 'down gone']);
    expect(tally.backplaneLosses).toBe(1);
  });

  it('counts dropped events and copies by reason, and redeliveries', () => {
    const tally = new RelayTally();
    tally.eventPublished();
    tally.eventDropped(EventDrop.NoSubscriber, 1);
    tally.eventDropped(EventDrop.Unreachable, 3);
    tally.eventRedelivered();
    expect([tally.published, ...tally.dropped, tally.redelivered]).toEqual([1, 1, 3, 1]);
  });
});

describe('LatencyBuckets', () => {
  it('counts each duration in the first bucket whose bound it does not pass (bounds are inclusive), cumulatively when read', () => {
    const buckets = new LatencyBuckets([0.001, 0.01]);
    for (const ms of [0.5, 1, 1.01, 10, 11]) buckets.observe(ms);
    const { cumulative, sumSeconds } = buckets.read();
    expect(cumulative).toEqual([2, 4, 5]);
    expect(sumSeconds).toBeCloseTo(0.02351, 8);
  });
});

describe('error codes', () => {
  it('name a refusal reason and a request outcome each', () => {
    expect(refusalReasonOf(RelayErrorCode.UNAUTHORIZED)).toBe(RefusalReason.Auth);
    expect(refusalReasonOf(RelayErrorCode.NODE_ID_CONFLICT)).toBe(RefusalReason.Handshake);
    expect(refusalReasonOf('SOMETHING_NEW')).toBe(RefusalReason.Other);
    expect(outcomeOf(RelayErrorCode.TIMEOUT)).toBe(RequestOutcome.Timeout);
    expect(outcomeOf(RelayErrorCode.SLOW_CONSUMER)).toBe(RequestOutcome.SlowConsumer);
    expect(outcomeOf('FROM_ANOTHER_RELAY')).toBe(RequestOutcome.Other);
  });
});
