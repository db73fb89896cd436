/** Flow control (protocol.md "Flow control (capability `credit`)"): skipped when the relay does not speak `credit`. */
import { Capability, type CreditFrame, encodePayload, FrameType, RelayErrorCode, type RequestFrame, ResponseFlag } from '@wsrelay/protocol';
import type { Node, Scenario, ScenarioContext } from './context.js';
import { check, Skipped } from './failure.js';
import { answerTo, expectError, expectResponse, idOf, ofType, request, requestFor, response } from './frames.js';

const { DONE, ERROR } = ResponseFlag;
const LONG_MS = 60_000;
const CAPS = [Capability.CREDIT];

/** A caller that agreed on `credit` (the scenario is skipped when the relay's WELCOME does not list it). */
async function creditCaller(ctx: ScenarioContext): Promise<Node> {
  const caller = await ctx.hello('caller', { caps: CAPS });
  if (!(caller.welcome.caps ?? []).includes(Capability.CREDIT)) {
    throw new Skipped("the relay's WELCOME does not list the `credit` capability (flow control is optional)");
  }
  return caller;
}

/** Sends a flow-controlled REQUEST (`window`); the frame its provider got. */
async function call(caller: Node, provider: Node, id: number, pattern: string, window: number): Promise<RequestFrame> {
  caller.send(request(id, pattern, encodePayload(id), LONG_MS, { window }));
  return (await provider.take(requestFor(pattern), `the REQUEST (caller id ${id}, window ${window}) at the provider`)) as RequestFrame;
}

/** The provider sends values `from`..`to`; the caller gets each, in order. */
async function values(caller: Node, provider: Node, rid: number, id: number, from: number, to: number): Promise<void> {
  for (let v = from; v <= to; v++) provider.send(response(rid, 0, encodePayload(v)));
  for (let v = from; v <= to; v++) {
    const got = await caller.take(answerTo(id), `value ${v} of flow-controlled stream ${id}`);
    expectResponse(got, id, 0, encodePayload(v), `value ${v} of stream ${id} (within its credit)`);
  }
}

async function creditExceeded(ctx: ScenarioContext): Promise<void> {
  const caller = await creditCaller(ctx);
  const pattern = ctx.subject('stream');
  const provider = await ctx.hello('provider', { patterns: [pattern], caps: CAPS });
  const req = await call(caller, provider, 1, pattern, 2);
  check(req.window === 2, `a provider that agreed on credit must get the caller's window (2), got ${String(req.window)}`);
  await values(caller, provider, req.id, 1, 1, 2);
  caller.send({ type: FrameType.Credit, id: 1, credit: 1 });
  const grant = (await provider.take(ofType(FrameType.Credit), 'CREDIT at the provider (the caller granted 1)')) as CreditFrame;
  check(
    grant.id === req.id && grant.credit === 1,
    `CREDIT must reach the provider as id ${req.id} credit 1, got id ${grant.id} credit ${grant.credit}`,
  );
  await values(caller, provider, req.id, 1, 3, 3);
  // A value past the credit.
  provider.send(response(req.id, 0, encodePayload(4)));
  const stop = await caller.take(answerTo(1), 'ERROR SLOW_CONSUMER (the provider sent a value past the credit)');
  expectError(stop, RelayErrorCode.SLOW_CONSUMER, 1, 'a value past the credit');
  const cancel = await provider.take(ofType(FrameType.Cancel), 'CANCEL at the provider that sent a value past the credit');
  check(idOf(cancel) === req.id, `CANCEL after SLOW_CONSUMER must carry the relay's id ${req.id}, got ${idOf(cancel)}`);
}

async function freeAnswers(ctx: ScenarioContext): Promise<void> {
  const caller = await creditCaller(ctx);
  const pattern = ctx.subject('stream');
  const provider = await ctx.hello('provider', { patterns: [pattern], caps: CAPS });
  // Window 1: one value, then a bare DONE (no credit needed).
  const first = await call(caller, provider, 1, pattern, 1);
  await values(caller, provider, first.id, 1, 1, 1);
  provider.send(response(first.id, DONE, null));
  expectResponse(await caller.take(answerTo(1), 'the bare DONE of stream 1'), 1, DONE, null, 'a bare DONE after the window is used');
  // Window 1: one value, then an ERROR response (no credit needed either).
  const second = await call(caller, provider, 2, pattern, 1);
  await values(caller, provider, second.id, 2, 1, 1);
  const error = encodePayload({ status: 'error', message: 'conformance' });
  provider.send(response(second.id, ERROR | DONE, error));
  expectResponse(
    await caller.take(answerTo(2), 'the ERROR response of stream 2'),
    2,
    ERROR | DONE,
    error,
    'an ERROR response after the window is used',
  );
}

async function providerWithout(ctx: ScenarioContext): Promise<void> {
  const caller = await creditCaller(ctx);
  const pattern = ctx.subject('stream');
  const provider = await ctx.hello('provider', { patterns: [pattern] });
  const req = await call(caller, provider, 1, pattern, 1);
  check(req.window === undefined, `a provider that did not agree on credit must get no window, got ${String(req.window)}`);
  await values(caller, provider, req.id, 1, 1, 3);
  caller.send({ type: FrameType.Credit, id: 1, credit: 5 });
  await caller.settle(() => false, 'the relay read the CREDIT');
  await provider.settle(ofType(FrameType.Credit), 'a provider that did not agree on credit gets no CREDIT');
  provider.send(response(req.id, DONE, null));
  expectResponse(await caller.take(answerTo(1), 'the DONE of the stream'), 1, DONE, null, 'the end of a stream without flow control');
}

export const FLOW_SCENARIOS: readonly Scenario[] = [
  {
    id: 'credit',
    name: 'flow control: window reaches the provider, CREDIT passed on, past it SLOW_CONSUMER + CANCEL',
    run: creditExceeded,
  },
  { id: 'free', name: 'flow control: a bare DONE and an ERROR response take no credit', run: freeAnswers },
  { id: 'nocredit', name: 'flow control: a provider without `credit` gets no window and no CREDIT', run: providerWithout },
];
