/** Events (protocol.md "Events" and "Handler acks"): fan-out by wildcard, queue groups, ACK, HANDLED. */
import { decodePayload, encodePayload, EventFlag, type EventFrame, FrameType, RelayErrorCode } from '@wsrelay/protocol';
import type { Node, Scenario, ScenarioContext } from './context.js';
import { check, hex, sameBytes } from './failure.js';
import { answerTo, checkRelayId, event, eventFor, expectAck, expectError, expectType } from './frames.js';
import { takeAny } from './peer.js';

const HANDLER_ERROR = 'HANDLER_ERROR';
const ACK_WAIT_MS = 10_000;

/** Takes the copy of `sent` at `node` and checks what the relay says about it: emitter, subject, payload. */
async function copyAt(node: Node, sent: EventFrame, emitter: Node): Promise<EventFrame> {
  const copy = expectType(await node.take(eventFor(sent.pattern), `the EVENT ${sent.pattern} at ${node.nodeId}`), FrameType.Event, 'EVENT');
  const at = `the EVENT ${sent.pattern} delivered to ${node.nodeId}`;
  check(copy.peer === emitter.nodeId, `${at}: peer must be the emitter's node id ${emitter.nodeId}, got ${JSON.stringify(copy.peer)}`);
  check(sameBytes(copy.payload, sent.payload), `${at}: payload must be untouched: sent ${hex(sent.payload)}, got ${hex(copy.payload)}`);
  return copy;
}

/**
 * After the emitter's ACK (the relay wrote every copy before it): the nodes
 * of `got` have no copy of `subject` besides the one taken, the others none.
 */
async function noMoreCopies(nodes: readonly Node[], got: readonly Node[], subject: string): Promise<void> {
  for (const node of nodes) {
    await node.settle(eventFor(subject), `${node.nodeId} gets ${got.includes(node) ? 'one copy' : 'no copy'} of ${subject}`);
  }
}

async function fanout(ctx: ScenarioContext): Promise<void> {
  const s = (rest: string) => ctx.subject(rest);
  // `star` matches orders.created twice: it must still get one copy.
  const star = await ctx.hello('star', { events: [s('orders.*'), s('orders.created')] });
  const rest = await ctx.hello('rest', { events: [s('orders.>')] });
  const exact = await ctx.hello('exact', { events: [s('orders.created')] });
  const bare = await ctx.hello('bare', { events: [s('orders')] });
  const emitter = await ctx.hello('emitter');
  const all = [star, rest, exact, bare];
  const cases: Array<[string, Node[]]> = [
    [s('orders.created'), [star, rest, exact]],
    [s('orders.eu.created'), [rest]],
    [s('orders'), [bare]],
    [s('nobody.listens'), []],
  ];
  for (const [i, [subject, to]] of cases.entries()) {
    const sent = event(i + 1, subject, encodePayload({ subject, i }));
    emitter.send(sent);
    const ack = await emitter.take(answerTo(sent.id), `the ACK of EVENT ${sent.id} (${subject})`);
    expectAck(ack, sent.id, to.length, `EVENT ${subject} (subscribers: ${to.map(n => n.nodeId).join(', ') || 'none'})`);
    for (const node of to) await copyAt(node, sent, emitter);
    await noMoreCopies(all, to, subject);
  }
  // Id 0: delivered, never acknowledged.
  const quiet = event(0, s('orders.created'), encodePayload('no ack'));
  emitter.send(quiet);
  for (const node of [star, rest, exact]) await copyAt(node, quiet, emitter);
  await emitter.settle(f => f.type === FrameType.Ack || f.type === FrameType.Error, 'an EVENT with id 0 gets no ACK');
}

async function queueGroup(ctx: ScenarioContext): Promise<void> {
  const subject = ctx.subject('jobs.run');
  const events = [ctx.subject('jobs.*')];
  const q1 = await ctx.hello('worker-1', { events, queue: 'workers' });
  const q2 = await ctx.hello('worker-2', { events, queue: 'workers' });
  const plain = await ctx.hello('plain', { events });
  const emitter = await ctx.hello('emitter');
  const members: string[] = [];
  for (let id = 1; id <= 2; id++) {
    const sent = event(id, subject, encodePayload(id));
    emitter.send(sent);
    expectAck(
      await emitter.take(answerTo(id), `the ACK of EVENT ${id}`),
      id,
      2,
      'an EVENT for a queue group of two and a plain subscriber',
    );
    await copyAt(plain, sent, emitter);
    const { peer } = await takeAny([q1, q2], eventFor(subject), `the copy of EVENT ${id} at one member of queue group "workers"`);
    members.push(peer.nodeId);
    await noMoreCopies([q1, q2, plain], [peer as Node, plain], subject);
  }
  check(members[0] !== members[1], `a queue group's copies must go round-robin; both went to ${members[0]}`);
}

/** Two handlers of `subject` and an emitter whose EVENT with ACK_HANDLERS both got, each checked. */
async function handlerCopies(ctx: ScenarioContext, id: number) {
  const subject = ctx.subject('audit.login');
  const h1 = await ctx.hello('handler-1', { events: [ctx.subject('audit.*')] });
  const h2 = await ctx.hello('handler-2', { events: [ctx.subject('audit.>')] });
  const emitter = await ctx.hello('emitter');
  const sent = event(id, subject, encodePayload({ user: 'conformance' }), { flags: EventFlag.ACK_HANDLERS, timeoutMs: ACK_WAIT_MS });
  emitter.send(sent);
  const copies: EventFrame[] = [];
  for (const h of [h1, h2]) {
    const copy = await copyAt(h, sent, emitter);
    const at = `the copy of a handler-acked EVENT at ${h.nodeId}`;
    checkRelayId(copy.id, at);
    check(((copy.flags ?? 0) & EventFlag.ACK_HANDLERS) !== 0, `${at}: flags must have ACK_HANDLERS (1), got ${String(copy.flags)}`);
    check(copy.attempt === 1, `${at}: attempt must be 1, got ${String(copy.attempt)}`);
    copies.push(copy);
  }
  check(copies[0].id !== copies[1].id, `each recipient must get its own delivery id; both got ${copies[0].id}`);
  await emitter.settle(answerTo(id), 'the emitter gets no answer before every handler has answered');
  return { h1, h2, emitter, copies };
}

async function handlerAcks(ctx: ScenarioContext): Promise<void> {
  const { h1, h2, emitter, copies } = await handlerCopies(ctx, 5);
  h1.send({ type: FrameType.Handled, id: copies[0].id, error: null });
  await h1.settle(() => false, 'the relay read the first HANDLED');
  await emitter.settle(answerTo(5), 'the emitter gets no answer while one handler has not answered');
  h2.send({ type: FrameType.Handled, id: copies[1].id, error: null });
  expectAck(await emitter.take(answerTo(5), 'the ACK once both handlers answered HANDLED'), 5, 2, 'an EVENT whose two handlers succeeded');
}

async function handlerFailed(ctx: ScenarioContext): Promise<void> {
  const { h1, h2, emitter, copies } = await handlerCopies(ctx, 6);
  const error = encodePayload({ status: 'error', message: 'conformance handler failure' });
  h1.send({ type: FrameType.Handled, id: copies[0].id, error: null });
  h2.send({ type: FrameType.Handled, id: copies[1].id, error });
  const answer = await emitter.take(answerTo(6), 'ERROR HANDLER_FAILED once one handler failed');
  const failed = expectError(answer, RelayErrorCode.HANDLER_FAILED, 6, 'an EVENT one of whose two handlers failed');
  check(failed.details != null, 'HANDLER_FAILED must carry details (one [nodeId, code, error] per failed copy)');
  let details: unknown;
  try {
    details = decodePayload(failed.details);
  } catch (err) {
    check(false, `HANDLER_FAILED details must be MessagePack: ${(err as Error).message}`);
  }
  const entry = Array.isArray(details) && details.length === 1 ? (details[0] as unknown) : undefined;
  const shown = JSON.stringify(details, (_k, v: unknown) => (v instanceof Uint8Array ? hex(v) : v));
  check(Array.isArray(entry), `HANDLER_FAILED details must be an array of one [nodeId, code, error], got ${shown}`);
  check(entry[0] === h2.nodeId && entry[1] === HANDLER_ERROR, `HANDLER_FAILED must name [${h2.nodeId}, ${HANDLER_ERROR}], got ${shown}`);
  check(sameBytes(entry[2] as Uint8Array, error), `HANDLER_FAILED must carry the handler's error untouched (${hex(error)}), got ${shown}`);
}

export const EVENT_SCENARIOS: readonly Scenario[] = [
  { id: 'fanout', name: 'events: fan-out to matching subscribers (`*`, `>`), once per node, ACK with the count', run: fanout },
  { id: 'queue', name: 'events: a queue group gets one copy, round-robin', run: queueGroup },
  { id: 'hacks', name: 'events: ACK_HANDLERS copy (attempt 1), HANDLED from each, then ACK', run: handlerAcks },
  { id: 'hfail', name: 'events: HANDLED with an error gets ERROR HANDLER_FAILED with details', run: handlerFailed },
];
