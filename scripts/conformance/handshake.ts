/** Handshake (protocol.md "Handshake"): WELCOME and its fields, and the HELLOs and first frames the relay refuses. */
import { Capability, CloseCode, encodePayload, FrameType, RelayErrorCode } from '@wsrelay/protocol';
import type { Scenario, ScenarioContext } from './context.js';
import { check } from './failure.js';
import { answerTo, anyError, expectError, ofType, request } from './frames.js';

/** A capability no relay speaks: it must be left out of WELCOME. */
const UNKNOWN_CAPABILITY = 'conformance-unknown-capability';
/** A protocol version no relay speaks (yet). */
const FOREIGN_VERSION = 65_000;

async function welcome(ctx: ScenarioContext): Promise<void> {
  // helloOn checks each field: present, of its type, the offered version, the node id asked for.
  const plain = await ctx.hello('plain', { service: 'conformance' });
  check(
    plain.welcome.caps === undefined,
    `with no capability offered, WELCOME must leave caps off, got ${JSON.stringify(plain.welcome.caps)}`,
  );
  const offering = await ctx.hello('caps', { caps: [Capability.CREDIT, UNKNOWN_CAPABILITY] });
  check(!(offering.welcome.caps ?? []).includes(UNKNOWN_CAPABILITY), `WELCOME must leave out a capability the relay does not speak`);
  check(offering.welcome.sessionId !== plain.welcome.sessionId, `two connections got the same sessionId ${plain.welcome.sessionId}`);
  // A HELLO offering more than one version gets the highest the relay speaks of them.
  const both = await ctx.hello('versions', { versions: [FOREIGN_VERSION, 1] });
  check(both.welcome.version === 1, `HELLO offering versions ${FOREIGN_VERSION} and 1 must get version 1, got ${both.welcome.version}`);
}

async function versionMismatch(ctx: ScenarioContext): Promise<void> {
  const peer = await ctx.open();
  peer.send({
    type: FrameType.Hello,
    versions: [FOREIGN_VERSION],
    nodeId: ctx.nodeId('future'),
    service: null,
    patterns: [],
    events: [],
    queue: null,
  });
  const answer = await peer.take(anyError, `ERROR PROTOCOL_MISMATCH (the answer to a HELLO offering only version ${FOREIGN_VERSION})`);
  const refusal = expectError(answer, RelayErrorCode.PROTOCOL_MISMATCH, 0, 'HELLO with no version in common');
  check(refusal.message.length > 0, 'ERROR PROTOCOL_MISMATCH must say which versions the relay speaks; its message is empty');
  const { code } = await peer.closed(`close ${CloseCode.PROTOCOL_MISMATCH} after PROTOCOL_MISMATCH`);
  check(
    code === CloseCode.PROTOCOL_MISMATCH,
    `after PROTOCOL_MISMATCH the relay must close with ${CloseCode.PROTOCOL_MISMATCH}, closed with ${code}`,
  );
}

async function frameBeforeHello(ctx: ScenarioContext): Promise<void> {
  const peer = await ctx.open();
  peer.send(request(7, ctx.subject('early'), encodePayload(7), 5000));
  expectError(
    await peer.take(answerTo(7), 'ERROR BAD_FRAME for a REQUEST before HELLO'),
    RelayErrorCode.BAD_FRAME,
    7,
    'a REQUEST before HELLO',
  );
  peer.send({ type: FrameType.Discover, id: 8 });
  expectError(
    await peer.take(answerTo(8), 'ERROR BAD_FRAME for a DISCOVER before HELLO'),
    RelayErrorCode.BAD_FRAME,
    8,
    'a DISCOVER before HELLO',
  );
  // A BAD_FRAME leaves the connection open: HELLO still works.
  await ctx.helloOn(peer, ctx.nodeId('late'));
}

async function helloTwice(ctx: ScenarioContext): Promise<void> {
  const node = await ctx.hello('twice');
  node.send({ type: FrameType.Hello, versions: [1], nodeId: node.nodeId, service: null, patterns: [], events: [], queue: null });
  expectError(await node.take(anyError, 'ERROR BAD_FRAME for a second HELLO'), RelayErrorCode.BAD_FRAME, 0, 'a second HELLO');
  node.send({ type: FrameType.Ping });
  await node.take(ofType(FrameType.Pong), 'a PONG after the refused second HELLO (the connection stays)');
}

export const HANDSHAKE_SCENARIOS: readonly Scenario[] = [
  { id: 'welcome', name: 'handshake: HELLO gets WELCOME with every documented field', run: welcome },
  { id: 'version', name: 'handshake: no version in common gets PROTOCOL_MISMATCH and close 4426', run: versionMismatch },
  { id: 'first', name: 'handshake: a frame before HELLO gets BAD_FRAME (with its id)', run: frameBeforeHello },
  { id: 'twice', name: 'handshake: a second HELLO gets BAD_FRAME', run: helloTwice },
];
