/** Discovery (protocol.md "Discovery"): WAIT and DISCOVER. */
import { FrameType, RelayErrorCode } from '@wsrelay/protocol';
import type { Scenario, ScenarioContext } from './context.js';
import { check } from './failure.js';
import { answerTo, expectAck, expectError, expectType } from './frames.js';

const LONG_MS = 60_000;
const SHORT_MS = 200;

async function wait(ctx: ScenarioContext): Promise<void> {
  const pattern = ctx.subject('later');
  const caller = await ctx.hello('caller');
  caller.send({ type: FrameType.Wait, id: 1, pattern, timeoutMs: LONG_MS });
  await caller.settle(answerTo(1), 'a WAIT is not answered while nobody serves its pattern');
  await ctx.hello('provider', { patterns: [pattern] });
  expectAck(await caller.take(answerTo(1), 'the ACK of WAIT 1 once a provider said HELLO'), 1, 1, 'WAIT 1 (one provider came online)');
  caller.send({ type: FrameType.Wait, id: 2, pattern, timeoutMs: LONG_MS });
  expectAck(await caller.take(answerTo(2), 'the ACK of WAIT 2 (a provider is online)'), 2, 1, 'WAIT 2 for a pattern already served');
  const nobody = ctx.subject('never');
  caller.send({ type: FrameType.Wait, id: 3, pattern: nobody, timeoutMs: SHORT_MS });
  const late = await caller.take(answerTo(3), `ERROR TIMEOUT for WAIT 3 (${SHORT_MS} ms, nobody serves it)`, ctx.waitMs + SHORT_MS);
  expectError(late, RelayErrorCode.TIMEOUT, 3, `a WAIT of ${SHORT_MS} ms nobody answers`);
  // CANCEL withdraws a WAIT: its id may be used again at once (a WAIT in flight under it would make that BAD_FRAME).
  caller.send({ type: FrameType.Wait, id: 4, pattern: nobody, timeoutMs: LONG_MS });
  caller.send({ type: FrameType.Cancel, id: 4 });
  caller.send({ type: FrameType.Wait, id: 4, pattern: nobody, timeoutMs: LONG_MS });
  await caller.settle(answerTo(4), 'a WAIT withdrawn by CANCEL frees its id (the new WAIT 4 is accepted) and is not answered');
  caller.send({ type: FrameType.Wait, id: 4, pattern: nobody, timeoutMs: LONG_MS });
  const dup = await caller.take(answerTo(4), 'ERROR BAD_FRAME for a WAIT reusing the id of one in flight');
  expectError(dup, RelayErrorCode.BAD_FRAME, 4, 'a WAIT whose id is in flight');
}

async function discover(ctx: ScenarioContext): Promise<void> {
  const [rpc, stream, events] = [ctx.subject('lookup'), ctx.subject('feed'), ctx.subject('changes.*')];
  const provider = await ctx.hello('provider', {
    service: 'conformance-service',
    patterns: [rpc, stream],
    events: [events],
    queue: 'group',
  });
  const caller = await ctx.hello('caller');
  caller.send({ type: FrameType.Discover, id: 9 });
  const nodes = expectType(await caller.take(answerTo(9), 'NODES (the answer to DISCOVER 9)'), FrameType.Nodes, 'the answer to DISCOVER');
  const entry = nodes.nodes.find(n => n.nodeId === provider.nodeId);
  check(entry !== undefined, `NODES must list ${provider.nodeId}; it lists ${nodes.nodes.map(n => n.nodeId).join(', ') || 'nobody'}`);
  const shown = JSON.stringify(entry);
  check(entry.service === 'conformance-service', `NODES entry of ${provider.nodeId}: service must be "conformance-service": ${shown}`);
  check(sameSet(entry.patterns, [rpc, stream]), `NODES entry of ${provider.nodeId}: patterns must be ${rpc}, ${stream}: ${shown}`);
  check(sameSet(entry.events, [events]), `NODES entry of ${provider.nodeId}: events must be ${events}: ${shown}`);
  check(entry.queue === 'group', `NODES entry of ${provider.nodeId}: queue must be "group": ${shown}`);
  check(new Set(nodes.nodes.map(n => n.nodeId)).size === nodes.nodes.length, 'NODES lists a node id twice');
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && b.every(x => a.includes(x));
}

export const DISCOVERY_SCENARIOS: readonly Scenario[] = [
  { id: 'wait', name: 'WAIT: ACK once a provider is online, TIMEOUT, CANCEL withdraws it', run: wait },
  { id: 'discover', name: 'DISCOVER: NODES lists a node with its service, patterns, events, queue', run: discover },
];
