/** RPC (protocol.md "RPC"): routing, answers, streams, CANCEL, deadlines and providers that leave. */
import { encodePayload, FrameType, type RequestFrame, RelayErrorCode, ResponseFlag } from '@wsrelay/protocol';
import type { Node, Scenario, ScenarioContext } from './context.js';
import { check, hex, sameBytes } from './failure.js';
import { answerTo, checkRelayId, expectError, expectResponse, idOf, ofType, request, requestFor, response } from './frames.js';
import { takeAny } from './peer.js';

const { DONE, ERROR } = ResponseFlag;
/** A caller's deadline that no scenario reaches (the relay must not end those calls by itself). */
const LONG_MS = 60_000;
/** The deadline of the call that is meant to time out. */
const SHORT_MS = 300;

/** A payload the relay must pass on byte for byte: MessagePack of several kinds, different for each `n`. */
function payload(n: number): Uint8Array {
  return encodePayload({ n, text: `conformance ${n} ünïcödé`, bytes: new Uint8Array([n & 0xff, 0, 255]), list: [n, -n, 1.5, null, true] });
}

/** An `ext` (headers and metadata) the relay must forward untouched. */
const EXT = encodePayload({ h: { 'x-conformance': 'yes' }, m: { n: '1' } });

/**
 * The REQUEST the relay delivers for `sent` at one of `providers`: the
 * provider, and the frame, checked against what the caller sent.
 */
async function delivered(providers: readonly Node[], sent: RequestFrame, caller: Node): Promise<{ provider: Node; frame: RequestFrame }> {
  const what = `the REQUEST for ${sent.pattern} (the caller's id ${sent.id}) at ${providers.length > 1 ? 'a provider' : providers[0].nodeId}`;
  const { peer, frame } = await takeAny(providers, requestFor(sent.pattern), what);
  const r = frame as RequestFrame;
  const at = `the REQUEST delivered for the caller's id ${sent.id}`;
  checkRelayId(r.id, at);
  check(sameBytes(r.payload, sent.payload), `${at}: payload must be untouched: sent ${hex(sent.payload)}, got ${hex(r.payload)}`);
  check(
    sameBytes(r.ext, sent.ext),
    `${at}: ext must be forwarded untouched: sent ${sent.ext === null ? 'none' : hex(sent.ext)}, got ${r.ext === null ? 'none' : hex(r.ext)}`,
  );
  check(r.peer === caller.nodeId, `${at}: peer must be the caller's node id ${caller.nodeId}, got ${JSON.stringify(r.peer)}`);
  check(
    r.timeoutMs > 0 && r.timeoutMs <= sent.timeoutMs,
    `${at}: timeoutMs must be the time left (1..${sent.timeoutMs}), got ${r.timeoutMs}`,
  );
  return { provider: peer as Node, frame: r };
}

/** Caller → provider → caller: the provider that served the call. */
async function roundTrip(caller: Node, providers: readonly Node[], sent: RequestFrame): Promise<Node> {
  caller.send(sent);
  const { provider, frame } = await delivered(providers, sent, caller);
  const answer = payload(1000 + sent.id);
  provider.send(response(frame.id, DONE, answer));
  const got = await caller.take(answerTo(sent.id), `the RESPONSE to the caller's request ${sent.id}`);
  expectResponse(got, sent.id, DONE, answer, `the answer to request ${sent.id}`);
  return provider;
}

async function roundRobin(ctx: ScenarioContext): Promise<void> {
  const pattern = ctx.subject('echo');
  const a = await ctx.hello('provider-a', { patterns: [pattern] });
  const b = await ctx.hello('provider-b', { patterns: [pattern] });
  const caller = await ctx.hello('caller');
  const served: string[] = [];
  for (let id = 1; id <= 4; id++) {
    const provider = await roundTrip(caller, [a, b], request(id, pattern, payload(id), LONG_MS, { ext: EXT }));
    served.push(provider === a ? 'A' : 'B');
  }
  check(
    served.every((p, i) => i === 0 || p !== served[i - 1]),
    `round-robin over providers A and B must alternate; four calls went to ${served.join(', ')}`,
  );
}

async function namedPeer(ctx: ScenarioContext): Promise<void> {
  const pattern = ctx.subject('echo');
  const a = await ctx.hello('provider-a', { patterns: [pattern] });
  const b = await ctx.hello('provider-b', { patterns: [pattern] });
  const caller = await ctx.hello('caller');
  for (let id = 1; id <= 3; id++) {
    const provider = await roundTrip(caller, [a, b], request(id, pattern, payload(id), LONG_MS, { peer: b.nodeId }));
    check(provider === b, `a REQUEST naming peer ${b.nodeId} went to ${provider.nodeId}`);
  }
}

async function offline(ctx: ScenarioContext): Promise<void> {
  const served = ctx.subject('served');
  const provider = await ctx.hello('provider', { patterns: [served] });
  const caller = await ctx.hello('caller');
  // A relay in its startup grace holds these until the grace or the deadline ends: MICROSERVICE_OFFLINE all the same.
  const deadlineMs = 2000;
  const wait = ctx.waitMs + deadlineMs;
  const cases: Array<[string, RequestFrame]> = [
    ['a pattern nobody serves', request(1, ctx.subject('nobody'), payload(1), deadlineMs)],
    ['a target node that is not online', request(2, served, payload(2), deadlineMs, { peer: ctx.nodeId('absent') })],
    ['a target node that does not serve the pattern', request(3, served, payload(3), deadlineMs, { peer: caller.nodeId })],
  ];
  for (const [what, sent] of cases) {
    caller.send(sent);
    const answer = await caller.take(answerTo(sent.id), `ERROR MICROSERVICE_OFFLINE for ${what}`, wait);
    expectError(answer, RelayErrorCode.MICROSERVICE_OFFLINE, sent.id, `a REQUEST for ${what}`);
  }
  await provider.settle(ofType(FrameType.Request), 'requests that name another node reach no other provider');
}

async function stream(ctx: ScenarioContext): Promise<void> {
  const pattern = ctx.subject('stream');
  const provider = await ctx.hello('provider', { patterns: [pattern] });
  const caller = await ctx.hello('caller');
  // Values then a bare DONE; values with DONE on the last; a handler error.
  const streams: Array<Array<[number, Uint8Array | null]>> = [
    [
      [0, payload(1)],
      [0, payload(2)],
      [0, payload(3)],
      [DONE, null],
    ],
    [
      [0, payload(4)],
      [DONE, payload(5)],
    ],
    [[ERROR | DONE, encodePayload({ status: 'error', message: 'conformance handler error' })]],
  ];
  for (const [i, parts] of streams.entries()) {
    const id = i + 1;
    const sent = request(id, pattern, payload(id), LONG_MS);
    caller.send(sent);
    const { frame } = await delivered([provider], sent, caller);
    for (const [flags, value] of parts) provider.send(response(frame.id, flags, value));
    for (const [n, [flags, value]] of parts.entries()) {
      const got = await caller.take(answerTo(id), `RESPONSE ${n + 1} of ${parts.length} of stream ${id}`);
      expectResponse(got, id, flags, value, `RESPONSE ${n + 1} of ${parts.length} of stream ${id}, in order`);
    }
  }
}

async function cancel(ctx: ScenarioContext): Promise<void> {
  const pattern = ctx.subject('slow');
  const provider = await ctx.hello('provider', { patterns: [pattern] });
  const caller = await ctx.hello('caller');
  const sent = request(1, pattern, payload(1), LONG_MS);
  caller.send(sent);
  const { frame } = await delivered([provider], sent, caller);
  caller.send({ type: FrameType.Cancel, id: 1 });
  const got = await provider.take(ofType(FrameType.Cancel), `CANCEL at the provider (the caller cancelled its request 1)`);
  check(idOf(got) === frame.id, `CANCEL at the provider must carry the relay's id ${frame.id}, got ${idOf(got)}`);
  // A late answer is dropped; the caller's id is free again.
  provider.send(response(frame.id, DONE, payload(2)));
  await provider.settle(() => false, 'the relay read the late RESPONSE');
  await caller.settle(answerTo(1), 'nothing reaches the caller for a request it cancelled');
  await roundTrip(caller, [provider], request(1, pattern, payload(3), LONG_MS));
}

async function deadline(ctx: ScenarioContext): Promise<void> {
  const pattern = ctx.subject('silent');
  const provider = await ctx.hello('provider', { patterns: [pattern] });
  const caller = await ctx.hello('caller');
  const sent = request(1, pattern, payload(1), SHORT_MS);
  const start = Date.now();
  caller.send(sent);
  const { frame } = await delivered([provider], sent, caller);
  const answer = await caller.take(
    answerTo(1),
    `ERROR TIMEOUT (a call of ${SHORT_MS} ms its provider never answers)`,
    ctx.waitMs + SHORT_MS,
  );
  expectError(answer, RelayErrorCode.TIMEOUT, 1, `a call of ${SHORT_MS} ms that its provider never answers`);
  const elapsed = Date.now() - start;
  check(elapsed >= SHORT_MS - 5, `TIMEOUT came ${elapsed} ms after the REQUEST, before its timeoutMs of ${SHORT_MS}`);
  const stop = await provider.take(ofType(FrameType.Cancel), 'CANCEL at the provider of a call that timed out');
  check(idOf(stop) === frame.id, `CANCEL after TIMEOUT must carry the relay's id ${frame.id}, got ${idOf(stop)}`);
}

async function providerGone(ctx: ScenarioContext): Promise<void> {
  const pattern = ctx.subject('leaving');
  const provider = await ctx.hello('provider', { patterns: [pattern] });
  const caller = await ctx.hello('caller');
  const sent = request(1, pattern, payload(1), LONG_MS);
  caller.send(sent);
  await delivered([provider], sent, caller);
  provider.close();
  const answer = await caller.take(answerTo(1), 'ERROR PROVIDER_DISCONNECTED (the provider closed its connection mid-call)');
  expectError(answer, RelayErrorCode.PROVIDER_DISCONNECTED, 1, 'a call whose provider closed its connection');
}

export const RPC_SCENARIOS: readonly Scenario[] = [
  { id: 'rr', name: 'call: REQUEST round-robin, RESPONSE relayed with the caller id, bytes untouched', run: roundRobin },
  { id: 'peer', name: 'call: REQUEST to a named peer goes to that node only', run: namedPeer },
  { id: 'offline', name: 'call: MICROSERVICE_OFFLINE for a pattern or target nobody serves', run: offline },
  { id: 'stream', name: 'stream: several RESPONSEs then DONE, in order (and an ERROR response)', run: stream },
  { id: 'cancel', name: 'cancel: caller CANCEL reaches the provider with the relay id', run: cancel },
  { id: 'deadline', name: 'deadline: TIMEOUT to the caller, CANCEL to the provider', run: deadline },
  { id: 'gone', name: 'provider gone: PROVIDER_DISCONNECTED when its socket closes mid-call', run: providerGone },
];
