import {
  decodePayload,
  FrameType,
  type HelloFrame,
  MAX_CAPABILITIES,
  SUPPORTED_PROTOCOL_VERSIONS,
  type WelcomeFrame,
} from '@wsrelay/protocol';
import { describeFrame, Failure } from './failure.js';
import { type Message, Peer } from './peer.js';

/** One documented behaviour, checked against a live relay with connections of its own. */
export interface Scenario {
  /** Short and unique: it goes into the scenario's node ids and patterns. */
  id: string;
  /** What the report prints. */
  name: string;
  /** Resolves when the relay behaved as documented; throws Failure (or Skipped) otherwise. */
  run(ctx: ScenarioContext): Promise<void>;
}

/** What a HELLO announces besides the node id (nothing by default: a plain caller). */
export interface HelloOptions {
  versions?: number[];
  service?: string;
  patterns?: string[];
  events?: string[];
  queue?: string;
  caps?: string[];
}

export function helloFrame(nodeId: string, o: HelloOptions = {}): HelloFrame {
  return {
    type: FrameType.Hello,
    versions: o.versions ?? [...SUPPORTED_PROTOCOL_VERSIONS],
    nodeId,
    service: o.service ?? null,
    patterns: o.patterns ?? [],
    events: o.events ?? [],
    queue: o.queue ?? null,
    caps: o.caps,
  };
}

/** A connection that said HELLO and got WELCOME. */
export interface Node extends Peer {
  welcome: WelcomeFrame;
}

/**
 * What a scenario works with: connections to the relay (all closed when it
 * ends, however it ends), node ids and patterns no other scenario or run
 * uses, and the time a frame the relay owes may take.
 */
export class ScenarioContext {
  private readonly peers: Peer[] = [];
  private over = false;

  constructor(
    readonly url: string,
    private readonly options: { token?: string; waitMs: number },
    /** Unique to this scenario in this run; a valid subject token. */
    private readonly prefix: string,
  ) {}

  get waitMs(): number {
    return this.options.waitMs;
  }

  nodeId(role: string): string {
    return `${this.prefix}-${role}`;
  }

  /** An RPC pattern or event subject of this scenario: `rest` after a token of its own. */
  subject(rest: string): string {
    return `${this.prefix}.${rest}`;
  }

  async open(): Promise<Peer> {
    if (this.over) throw new Failure('the scenario is over');
    const peer = await Peer.open(this.url, this.options);
    this.peers.push(peer);
    if (this.over) peer.terminate();
    return peer;
  }

  /** A new connection that says HELLO as `role` and checks the WELCOME it gets. */
  async hello(role: string, o: HelloOptions = {}): Promise<Node> {
    const peer = await this.open();
    await this.helloOn(peer, this.nodeId(role), o);
    return peer as Node;
  }

  /** Says HELLO on `peer` and checks the answer is a WELCOME with every field the doc gives. */
  async helloOn(peer: Peer, nodeId: string, o: HelloOptions = {}): Promise<WelcomeFrame> {
    const hello = helloFrame(nodeId, o);
    peer.send(hello);
    const answer = await peer.nextMessage(`WELCOME (the answer to the HELLO of ${nodeId})`);
    const problems = welcomeProblems(answer, hello);
    if (problems.length > 0) throw new Failure(`the answer to the HELLO of ${nodeId} is not a valid WELCOME: ${problems.join('; ')}`);
    peer.nodeId = nodeId;
    const welcome = answer.frame as WelcomeFrame;
    (peer as Node).welcome = welcome;
    return welcome;
  }

  /** Ends the scenario: every connection it opened is dropped. */
  close(): void {
    this.over = true;
    for (const peer of this.peers) peer.terminate();
  }
}

const WELCOME_FIELDS: ReadonlyArray<[string, string, (v: unknown, hello: HelloFrame) => boolean]> = [
  ['version', 'one of the versions the HELLO offered', (v, h) => typeof v === 'number' && h.versions.includes(v)],
  ['relayId', 'a non-empty string', v => typeof v === 'string' && v.length > 0],
  ['sessionId', 'a non-empty string', v => typeof v === 'string' && v.length > 0],
  ['nodeId', "the HELLO's node id", (v, h) => v === h.nodeId],
  ['maxPayloadBytes', 'a positive integer', v => Number.isInteger(v) && (v as number) > 0],
  ['heartbeatIntervalMs', 'a positive integer', v => Number.isInteger(v) && (v as number) > 0],
];

/**
 * What is wrong with `answer` as the WELCOME to `hello`, field by field
 * (none: it is a valid one): each field the doc gives, of its type, the
 * version one of those offered, the node id the one asked for, and the
 * capabilities some of those offered, left off when none.
 */
export function welcomeProblems(answer: Message, hello: HelloFrame): string[] {
  if (!answer.binary) return [`the relay sent ${answer.problem}`];
  let raw: unknown;
  try {
    raw = decodePayload(answer.bytes);
  } catch (err) {
    return [`the relay sent bytes that are not MessagePack (${(err as Error).message})`];
  }
  if (!Array.isArray(raw)) return ['the relay sent MessagePack that is not an array'];
  if (raw[0] !== FrameType.Welcome) {
    const got = answer.frame === undefined ? `a frame of type ${JSON.stringify(raw[0])}` : describeFrame(answer.frame);
    return [`expected WELCOME (type ${FrameType.Welcome}), got ${got}`];
  }
  const problems: string[] = [];
  WELCOME_FIELDS.forEach(([name, kind, ok], i) => {
    const v: unknown = raw[i + 1];
    if (v === undefined) problems.push(`${name} (field ${i + 1}) is missing`);
    else if (!ok(v, hello)) problems.push(`${name} must be ${kind}, got ${JSON.stringify(v)}`);
  });
  problems.push(...capsProblems(raw[WELCOME_FIELDS.length + 1], hello.caps ?? []));
  if (problems.length === 0 && answer.frame === undefined) problems.push(`the codec refuses it: ${answer.problem}`);
  return problems;
}

function capsProblems(caps: unknown, offered: readonly string[]): string[] {
  if (caps == null) return [];
  if (!Array.isArray(caps) || !caps.every(c => typeof c === 'string'))
    return [`caps must be an array of strings, got ${JSON.stringify(caps)}`];
  if (caps.length === 0) return ['caps must be left off when there are none, not sent empty'];
  if (caps.length > MAX_CAPABILITIES) return [`caps lists ${caps.length} capabilities, over ${MAX_CAPABILITIES}`];
  const foreign = caps.filter(c => !offered.includes(c));
  return foreign.length === 0 ? [] : [`caps lists ${foreign.join(', ')}, which the HELLO did not offer`];
}
