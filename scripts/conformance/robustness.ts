/** Refused frames (protocol.md "Frames", "Limits", "Errors") and heartbeats: each answered, the connection kept. */
import { encodePayload, FrameType, RelayErrorCode, ResponseFlag } from '@wsrelay/protocol';
import type { Node, Scenario, ScenarioContext } from './context.js';
import { Skipped } from './failure.js';
import { answerTo, anyError, expectError, expectResponse, idOf, ofType, request, requestFor, response } from './frames.js';

const LONG_MS = 60_000;
/** The largest maxPayloadBytes this script builds a frame over (it must hold the frame in memory). */
const MAX_TESTED_PAYLOAD = 256 * 1024 * 1024;

/** The connection stays open and answers: a PING gets its PONG. */
async function stillOpen(node: Node, after: string): Promise<void> {
  node.send({ type: FrameType.Ping });
  await node.take(ofType(FrameType.Pong), `a PONG to a PING after ${after} (the connection must stay open)`);
}

/**
 * Sends `bytes` and expects ERROR `code` carrying `id` (the id the frame's
 * first bytes hold; 0 when they hold none), then the connection still open.
 */
async function refused(node: Node, bytes: Uint8Array | string, id: number, what: string, code = RelayErrorCode.BAD_FRAME): Promise<void> {
  node.sendRaw(bytes);
  // Whatever ERROR comes first answers it (each refusal here ends with the connection checked, so none is left over).
  expectError(await node.take(anyError, `ERROR ${code} for ${what}`), code, id, what);
  await stillOpen(node, what);
}

async function textFrame(ctx: ScenarioContext): Promise<void> {
  const node = await ctx.hello('node');
  await refused(node, 'hello relay', 0, 'a text message');
}

async function garbage(ctx: ScenarioContext): Promise<void> {
  const node = await ctx.hello('node');
  await refused(node, new Uint8Array([0xc1, 0xff, 0x00, 0x13]), 0, 'bytes that are not MessagePack');
  await refused(node, new Uint8Array([0x91, FrameType.Ping, 0xc0]), 0, 'a PING frame followed by a stray byte');
  await refused(node, encodePayload('a string, not an array'), 0, 'MessagePack that is not an array');
}

async function unknownType(ctx: ScenarioContext): Promise<void> {
  const node = await ctx.hello('node');
  await refused(node, encodePayload([99, 42, 'what is this']), 42, 'a frame of unknown type 99 (its id 42 readable)');
  await refused(node, encodePayload([FrameType.Ack, 43, 1]), 43, 'an ACK frame sent to the relay (a type it never receives)');
  await refused(node, encodePayload([FrameType.Nodes, 44, []]), 44, 'a NODES frame sent to the relay (a type it never receives)');
}

async function duplicateId(ctx: ScenarioContext): Promise<void> {
  const pattern = ctx.subject('slow');
  const provider = await ctx.hello('provider', { patterns: [pattern] });
  const caller = await ctx.hello('caller');
  caller.send(request(5, pattern, encodePayload('first'), LONG_MS));
  const first = await provider.take(requestFor(pattern), 'the REQUEST of the caller id 5 at the provider');
  caller.send(request(5, pattern, encodePayload('second'), LONG_MS));
  expectError(
    await caller.take(answerTo(5), 'ERROR BAD_FRAME for a second REQUEST with id 5'),
    RelayErrorCode.BAD_FRAME,
    5,
    'a duplicate id',
  );
  await provider.settle(requestFor(pattern), 'a REQUEST with a duplicate id does not reach the provider');
  // The first call is untouched.
  const answer = encodePayload('answer to the first');
  provider.send(response(idOf(first), ResponseFlag.DONE, answer));
  expectResponse(
    await caller.take(answerTo(5), 'the RESPONSE to the first request 5'),
    5,
    ResponseFlag.DONE,
    answer,
    'the first request 5',
  );
}

async function unknownIds(ctx: ScenarioContext): Promise<void> {
  const provider = await ctx.hello('provider', { patterns: [ctx.subject('any')] });
  const caller = await ctx.hello('caller');
  provider.send(response(987_654, ResponseFlag.DONE, encodePayload('nobody asked')));
  await provider.settle(anyError, 'a RESPONSE naming no request of the connection is dropped without an answer');
  provider.send({ type: FrameType.Handled, id: 987_655, error: null });
  await provider.settle(anyError, 'a HANDLED naming no delivery of the connection is dropped without an answer');
  caller.send({ type: FrameType.Cancel, id: 987_656 });
  await caller.settle(anyError, 'a CANCEL naming no request of the connection is dropped without an answer');
}

async function tooLarge(ctx: ScenarioContext): Promise<void> {
  const node = await ctx.hello('node');
  const max = node.welcome.maxPayloadBytes;
  if (max > MAX_TESTED_PAYLOAD)
    throw new Skipped(`WELCOME's maxPayloadBytes (${max}) is over the ${MAX_TESTED_PAYLOAD} bytes this script builds`);
  // Just over the limit (under twice it, where the relay may close with 1009 instead).
  const frame = encodePayload([FrameType.Request, 77, ctx.subject('big'), new Uint8Array(max), LONG_MS]);
  await refused(
    node,
    frame,
    77,
    `a REQUEST of ${frame.length} bytes (WELCOME's maxPayloadBytes: ${max})`,
    RelayErrorCode.PAYLOAD_TOO_LARGE,
  );
}

async function mapInFrame(ctx: ScenarioContext): Promise<void> {
  const node = await ctx.hello('node');
  const pattern = ctx.subject('mapped');
  await refused(node, encodePayload({ type: FrameType.Ping }), 0, 'a frame that is a MessagePack map');
  await refused(
    node,
    encodePayload([FrameType.Request, 88, pattern, encodePayload(1), LONG_MS, null, { h: 1 }]),
    88,
    'a REQUEST with a map as ext',
  );
  await refused(node, encodePayload([FrameType.Event, 89, pattern, { not: 'bin' }]), 89, 'an EVENT with a map as payload');
  // CANCEL id 90 with a trailing field that is a MessagePack ext (fixext 1): no ext anywhere either.
  await refused(node, new Uint8Array([0x93, FrameType.Cancel, 90, 0xd4, 0x01, 0x02]), 90, 'a CANCEL with an ext as a trailing field');
}

async function heartbeat(ctx: ScenarioContext): Promise<void> {
  const node = await ctx.hello('node');
  for (let i = 1; i <= 3; i++) {
    node.send({ type: FrameType.Ping });
    await node.take(ofType(FrameType.Pong), `the PONG frame answering PING frame ${i}`);
  }
}

export const ERROR_SCENARIOS: readonly Scenario[] = [
  { id: 'text', name: 'errors: a text message gets BAD_FRAME, the connection stays', run: textFrame },
  { id: 'garbage', name: 'errors: garbage bytes, trailing bytes, a non-array get BAD_FRAME', run: garbage },
  { id: 'type', name: 'errors: an unknown frame type (or one never sent to a relay) gets BAD_FRAME with its id', run: unknownType },
  { id: 'dup', name: 'errors: a duplicate request id gets BAD_FRAME, the first call goes on', run: duplicateId },
  { id: 'unknown', name: 'errors: RESPONSE, HANDLED, CANCEL for unknown ids are dropped, the connection stays', run: unknownIds },
  { id: 'large', name: "limits: a frame over WELCOME's maxPayloadBytes gets PAYLOAD_TOO_LARGE", run: tooLarge },
  { id: 'map', name: 'limits: a MessagePack map (or ext) inside a frame gets BAD_FRAME with its id', run: mapInFrame },
  { id: 'ping', name: 'heartbeats: a PING frame gets a PONG frame', run: heartbeat },
];
