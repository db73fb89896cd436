/**
 * Property-based fuzzing of a live relay. At least 10,000 generated hostile
 * frames (malformed MessagePack, lying length headers, wrong shapes and field
 * types, missing and extra fields, unknown and relay-only frame types,
 * oversized strings and payloads, huge arrays, deep nesting, trailing bytes,
 * text frames, frames before HELLO) go over several raw connections, in
 * batches that each wait for the relay's answers. Every frame the relay sends
 * back must be one a node can decode and could expect; the relay must not
 * throw, log an error, or keep anything of the fuzzing connections; real
 * nodes on other connections must not notice.
 *
 * The second block pins the relay bugs this fuzzing found.
 *
 * Reproduce a run with FUZZ_SEED=<seed> (a failure prints it).
 */
import { decode, Decoder, encode } from '@msgpack/msgpack';
import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  CloseCode,
  DEFAULT_MAX_ARRAY_LENGTH,
  checkMsgpackBounds,
  DEFAULT_MAX_STRING_BYTES,
  type Frame,
  FrameCodec,
  FrameType,
  MAX_FRAME_DEPTH,
  MAX_FRAME_FIELDS,
  peekFrameHead,
  RelayErrorCode,
  subscriptionProblem,
} from '@wsrelay/protocol';
import { RelayCore, type RelayDiagnostics } from '@wsrelay/relay';
import { type WsRelayClient, WsRelayRecordBuilder } from '@wsrelay/transport';
import fc from 'fast-check';
import { firstValueFrom } from 'rxjs';
import { isDeepStrictEqual } from 'node:util';
import WebSocket from 'ws';
import {
  rejection,
  type RunningProvider,
  type RunningRelay,
  startClient,
  startProvider,
  startRelay,
  until,
  useCleanup,
} from './support/harness.js';
import { FUZZ_PATTERNS, FUZZ_QUEUES, FUZZ_SUBSCRIPTIONS, type Hostile, hostileFrames } from './support/hostile-frames.js';
import { heapAfterGc, watchProcess } from './support/process-watch.js';
import { helloFrame, RawNode } from './support/raw-node.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_122);
/** The fuzzed relay's maxPayloadBytes: frames up to twice this are read, bigger ones close the socket. */
const LIMIT = 16 * 1024;
const SLOTS = 6;
/** Bad frames before the relay closes a connection (4400): enough that reconnecting does not dominate. */
const MAX_BAD_FRAMES = 300;
const BATCHES = 200;
const MIN_FRAMES = 10_000;
/** Measured growth is about 3 MiB (caches of Nest, Jest and fast-check); a leak of 1.5 KB per frame would exceed it. */
const HEAP_GROWTH_BOUND = 16 * 1024 * 1024;
const VALID_SUBSCRIPTIONS = FUZZ_SUBSCRIPTIONS.filter(p => subscriptionProblem(p) === null);

/** What the relay may answer a hostile frame with. */
const EXPECTED_ERRORS = new Set<string>([
  RelayErrorCode.BAD_FRAME,
  RelayErrorCode.PAYLOAD_TOO_LARGE,
  RelayErrorCode.RATE_LIMITED,
  RelayErrorCode.FORBIDDEN,
  RelayErrorCode.UNAUTHORIZED, // AUTH on a relay without auth
  RelayErrorCode.PROTOCOL_MISMATCH,
  RelayErrorCode.NODE_ID_CONFLICT,
  RelayErrorCode.MICROSERVICE_OFFLINE,
  RelayErrorCode.TIMEOUT,
  RelayErrorCode.PROVIDER_DISCONNECTED,
]);
/** How the relay may end a hostile connection. */
const EXPECTED_CLOSES = new Set<number>([
  CloseCode.BAD_FRAME,
  CloseCode.HANDSHAKE_TIMEOUT,
  CloseCode.UNAUTHORIZED, // AUTH refused too many times on one connection
  CloseCode.NODE_ID_CONFLICT,
  CloseCode.PROTOCOL_MISMATCH,
  1007, // a text frame that is not UTF-8
  1009, // a frame over twice maxPayloadBytes
]);

@Controller()
class EchoController {
  @MessagePattern('sanity.echo')
  echo(@Payload() v: unknown) {
    return v;
  }
}

/** What a node decodes relay frames with (default limits). */
const nodeCodec = new FrameCodec();
/** The relay's own view of a message: its codec, its size check. */
const RELAY_MAX_VALUES = 2 * DEFAULT_MAX_ARRAY_LENGTH + MAX_FRAME_FIELDS;
const relayCodec = new FrameCodec({ maxBinBytes: LIMIT, maxValues: RELAY_MAX_VALUES });
const RELAY_BOUNDS = { maxDepth: MAX_FRAME_DEPTH, maxElements: RELAY_MAX_VALUES, maxTopLength: MAX_FRAME_FIELDS };
const relayDecoder = new Decoder({
  maxStrLength: DEFAULT_MAX_STRING_BYTES,
  maxArrayLength: DEFAULT_MAX_ARRAY_LENGTH,
  maxMapLength: 0,
  maxExtLength: 0,
  maxBinLength: LIMIT,
});

/**
 * What the relay makes of a message, as far as the oracle needs: the id it
 * may correlate an answer to (the second field, when it reads one), and the
 * frame type when the frame is one it handles (a PING is answered, a HELLO
 * may be welcomed).
 */
function relaySees(h: Hostile): { id: number | undefined; frame: Frame | undefined } {
  if (!h.binary || typeof h.data === 'string') return { id: undefined, frame: undefined };
  // A frame the relay refuses before decoding it (too big, or over its structural bounds), or that does not decode, is answered with the id its first bytes give.
  const head = peekFrameHead(h.data);
  const peeked = head !== undefined && head.id > 0 ? head.id : undefined;
  if (h.data.length > LIMIT || checkMsgpackBounds(h.data, RELAY_BOUNDS) !== undefined) return { id: peeked, frame: undefined };
  let raw: unknown;
  try {
    raw = relayDecoder.decode(h.data);
  } catch {
    // Refused by the MessagePack decoder (a map or ext inside, a string too long): correlated the same way.
    return { id: peeked, frame: undefined };
  }
  if (!Array.isArray(raw)) return { id: undefined, frame: undefined };
  const id = Number.isInteger(raw[1]) && (raw[1] as number) > 0 ? (raw[1] as number) : undefined;
  if ((raw[0] !== FrameType.Ping && raw[0] !== FrameType.Hello) || h.data.length > LIMIT) return { id, frame: undefined };
  try {
    return { id, frame: relayCodec.decode(h.data) };
  } catch {
    return { id, frame: undefined };
  }
}

interface Violation {
  count: number;
  example: string;
}

/** Tally of what the relay did, to show the fuzzing reached each path. */
interface Seen {
  errors: Map<string, number>;
  frames: Map<string, number>;
  closes: Map<number, number>;
}

const bump = <K>(m: Map<K, number>, k: K) => m.set(k, (m.get(k) ?? 0) + 1);

/** A raw connection that checks every frame the relay sends against what it sent. */
class FuzzSocket {
  /** Ids the relay may correlate an answer to: 0 and every id this socket sent. */
  private readonly ids = new Set<number>([0]);
  private readonly helloNodeIds = new Set<string>();
  private pings = 0;
  private pongs = 0;
  private welcomed = false;
  private closing = false;
  private wake: (() => void) | undefined;
  closeCode: number | undefined;
  /** Kinds of the frames of the current batch, for reports. */
  batch: string[] = [];

  private constructor(
    private readonly ws: WebSocket,
    private readonly report: (kind: string, detail: string, batch: string[]) => void,
    private readonly seen: Seen,
  ) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.check(data, isBinary);
      this.wakeUp();
    });
    ws.on('close', code => {
      this.closeCode = code;
      bump(seen.closes, code);
      if (!this.closing && !EXPECTED_CLOSES.has(code)) this.flag(`closed with ${code}`, '');
      this.wakeUp();
    });
    ws.on('error', () => undefined); // the close code says what happened
  }

  static async open(url: string, report: FuzzSocket['report'], seen: Seen): Promise<FuzzSocket> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return new FuzzSocket(ws, report, seen);
  }

  get open(): boolean {
    return this.closeCode === undefined;
  }

  send(h: Hostile): void {
    const { id, frame } = relaySees(h);
    if (id !== undefined) this.ids.add(id);
    if (frame?.type === FrameType.Ping) this.pings++;
    if (frame?.type === FrameType.Hello) this.helloNodeIds.add(frame.nodeId);
    this.ws.send(h.data, { binary: h.binary });
  }

  /** A proper HELLO, then waits for WELCOME. */
  async hello(nodeId: string, patterns: string[], events: string[], queue: string | null): Promise<void> {
    this.batch = ['hello'];
    this.send({ kind: 'hello', data: encode([FrameType.Hello, [1], nodeId, null, patterns, events, queue]), binary: true });
    await this.until(() => this.welcomed, 'WELCOME');
  }

  /** Sends a PING and waits until every PING so far is answered (or the relay closed the socket). */
  async settle(): Promise<void> {
    this.send({ kind: 'sentinel PING', data: encode([FrameType.Ping]), binary: true });
    await this.until(() => this.pongs >= this.pings, 'PONG');
  }

  terminate(): void {
    this.closing = true;
    this.ws.terminate();
  }

  async close(): Promise<void> {
    this.closing = true;
    if (!this.open) return;
    this.ws.close(1000);
    await this.until(() => false, 'close');
  }

  private async until(done: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (this.open && !done()) {
      if (Date.now() > deadline) {
        this.flag(`no ${what} within 10 s`, '');
        this.ws.terminate();
        return;
      }
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, deadline - Date.now());
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private flag(kind: string, detail: string): void {
    this.report(kind, detail, this.batch);
  }

  private check(data: Buffer, isBinary: boolean): void {
    if (!isBinary) return this.flag('a text frame from the relay', data.toString().slice(0, 80));
    let f: Frame;
    try {
      f = nodeCodec.decode(data);
    } catch (err) {
      let what = '';
      try {
        const raw = decode(data) as unknown[];
        what = ` (${FrameType[raw[0] as FrameType]} ${typeof raw[2] === 'string' ? raw[2] : ''})`;
      } catch {
        /* not MessagePack at all */
      }
      const why = (err as Error).message.replace(/\d+/g, 'N').slice(0, 140);
      return this.flag(`a reply a node cannot decode${what}: ${why}`, `${data.length} bytes: ${(err as Error).message.slice(0, 140)}`);
    }
    const name = FrameType[f.type];
    bump(this.seen.frames, name);
    switch (f.type) {
      case FrameType.Error:
        bump(this.seen.errors, f.code);
        if (!EXPECTED_ERRORS.has(f.code)) this.flag(`ERROR ${f.code}`, f.message);
        if (!this.ids.has(f.id)) this.flag('an ERROR correlated to an id never sent', `${f.id} ${f.code}`);
        return;
      case FrameType.Welcome:
        if (this.welcomed || !this.helloNodeIds.has(f.nodeId)) this.flag('an unexpected WELCOME', f.nodeId);
        this.welcomed = true;
        return;
      case FrameType.Pong:
        if (++this.pongs > this.pings) this.flag('a PONG without a PING', '');
        return;
      case FrameType.Ack:
      case FrameType.Nodes:
      case FrameType.Response:
        if (!this.ids.has(f.id)) this.flag(`${name} for an id never sent`, String(f.id));
        return;
      case FrameType.Request:
      case FrameType.Event:
      case FrameType.Cancel:
        if (!this.welcomed) this.flag(`${name} delivered before WELCOME`, '');
        return;
      default:
        this.flag(`an unexpected ${name} frame`, '');
    }
  }
}

/** What the relay holds, from its diagnostics: every count must come back once the connections that caused it are gone. */
function books(core: RelayCore) {
  const d = core.diagnostics();
  const inWorlds = (f: (w: RelayDiagnostics['worlds'][number]) => number) => d.worlds.reduce((n, w) => n + f(w), 0);
  return {
    sessions: d.connections,
    inFlight: d.requests + d.waits.waits + d.waits.held + d.eventCopies,
    worlds: d.worlds.length,
    nodes: inWorlds(w => w.nodes.length),
    waitingPatterns: d.waits.patterns,
    providedPatterns: inWorlds(w => w.providedPatterns),
    subscriptions: inWorlds(w => w.subscriptions),
    queueTurns: inWorlds(w => w.queueGroups),
    reservations: d.reservations,
  };
}

describe('fuzzing a live relay', () => {
  let relay: RunningRelay;
  let provider: RunningProvider;
  let client: WsRelayClient;
  const sockets = new Array<FuzzSocket | undefined>(SLOTS).fill(undefined);

  beforeAll(async () => {
    relay = await startRelay({ maxPayloadBytes: LIMIT, maxBadFrames: MAX_BAD_FRAMES });
    provider = await startProvider([EchoController], { urls: [relay.url], nodeId: 'real-provider' });
    client = await startClient({ urls: [relay.url], nodeId: 'real-client' });
  });

  afterAll(async () => {
    for (const s of sockets) s?.terminate();
    await client.close();
    await provider.close();
    await relay.close();
  });

  it(`answers ${MIN_FRAMES}+ generated hostile frames only with frames a node can decode and expects, and stays sound`, async () => {
    const router = relay.app.get(RelayCore);
    let realNodeDrops = 0;
    client.on('disconnected', () => realNodeDrops++);
    provider.strategy.on('disconnected', () => realNodeDrops++);
    expect(await firstValueFrom(client.send('sanity.echo', 'warm-up'))).toBe('warm-up');
    const baseline = books(router);

    // Generated batch by batch (seed SEED + i), so that no frames are held while the heap is measured.
    const batchOf = fc.array(hostileFrames(LIMIT), { minLength: 50, maxLength: 54 });
    const heapBefore = heapAfterGc();
    const watch = watchProcess();
    const violations = new Map<string, Violation>();
    const report = (kind: string, detail: string, batch: string[]) => {
      const v = violations.get(kind);
      if (v !== undefined) v.count++;
      else violations.set(kind, { count: 1, example: `${detail}\n      batch: ${[...new Set(batch)].join(', ')}` });
    };
    const seen: Seen = { errors: new Map(), frames: new Map(), closes: new Map() };
    let opened = 0;
    let sent = 0;

    // Even slots say a proper HELLO first (and may serve, subscribe, queue);
    // odd ones start raw, so their frames come before any HELLO.
    const socketFor = async (slot: number): Promise<FuzzSocket> => {
      const current = sockets[slot];
      if (current?.open) return current;
      const s = await FuzzSocket.open(relay.url, report, seen);
      sockets[slot] = s;
      const n = opened++;
      if (slot % 2 === 0) {
        await s.hello(
          `slot-${slot}-${n}`,
          [FUZZ_PATTERNS[n % FUZZ_PATTERNS.length]],
          [VALID_SUBSCRIPTIONS[n % VALID_SUBSCRIPTIONS.length]],
          n % 3 === 0 ? null : FUZZ_QUEUES[n % FUZZ_QUEUES.length],
        );
      }
      return s;
    };

    try {
      for (let i = 0; i < BATCHES; i++) {
        const [batch] = fc.sample(batchOf, { seed: SEED + i, numRuns: 1 });
        sent += batch.length;
        await Promise.all(
          Array.from({ length: SLOTS }, async (_, slot) => {
            const frames = batch.filter((_, i) => i % SLOTS === slot);
            const s = await socketFor(slot);
            s.batch = frames.map(h => h.kind);
            for (const h of frames) s.send(h);
            await s.settle();
          }),
        );
      }
      for (const s of sockets) {
        if (s === undefined) continue;
        if (s.open) await s.settle(); // answers still under way
        await s.close();
      }
    } finally {
      watch.stop();
    }
    await until(() => router.connectionCount === baseline.sessions, 5000, 'the fuzzing connections to be dropped');

    // Real nodes on their own connections never noticed.
    const values = Array.from({ length: 50 }, (_, i) => ({ i, s: 'x'.repeat(i) }));
    expect(await Promise.all(values.map(v => firstValueFrom(client.send('sanity.echo', v))))).toEqual(values);
    expect(realNodeDrops).toBe(0);

    // The fuzzing reached the paths it is meant to.
    expect(sent).toBeGreaterThanOrEqual(MIN_FRAMES);
    expect([...seen.errors.keys()]).toEqual(expect.arrayContaining([RelayErrorCode.BAD_FRAME, RelayErrorCode.PAYLOAD_TOO_LARGE]));
    expect([...seen.frames.keys()]).toEqual(expect.arrayContaining(['Welcome', 'Pong', 'Request', 'Ack']));
    expect([...seen.closes.keys()]).toEqual(expect.arrayContaining([CloseCode.BAD_FRAME, 1009]));

    // Every problem at once, so that one bug does not hide the next.
    const problems: string[] = [];
    for (const [kind, v] of violations) problems.push(`${kind} (x${v.count}): ${v.example}`);
    for (const err of watch.uncaught) problems.push(`uncaught: ${String(err)}`);
    // ws reports a peer's protocol errors (1007, 1009) through the adapter's logger; anything else is a fault.
    const wsPeerError = (m: unknown) => m instanceof Error && String((m as { code?: unknown }).code).startsWith('WS_ERR_');
    for (const l of watch.logged) if (!wsPeerError(l.message)) problems.push(`logged by ${l.context}: ${String(l.message)}`);
    // Nothing of the fuzzing connections is left in the router's books...
    const after = books(router);
    for (const key of Object.keys(baseline) as Array<keyof typeof baseline>) {
      if (!isDeepStrictEqual(after[key], baseline[key])) {
        problems.push(`router books: ${key} is ${JSON.stringify(after[key])} after the fuzzing, ${JSON.stringify(baseline[key])} before`);
      }
    }
    // ...and memory stayed bounded.
    const growth = heapAfterGc() - heapBefore;
    if (growth > HEAP_GROWTH_BOUND) problems.push(`heap grew by ${growth} bytes (bound ${HEAP_GROWTH_BOUND})`);
    expect({ seed: SEED, problems }).toEqual({ seed: SEED, problems: [] });
  }, 60_000);
});

/**
 * Each pins a relay bug the fuzzing above found; they fail until it is fixed.
 */
describe('relay bugs found by fuzzing', () => {
  let relay: RunningRelay;
  const { add, track } = useCleanup();

  beforeAll(async () => {
    relay = await startRelay();
  });

  afterAll(async () => {
    await relay.close();
  });

  /** Opens a plain socket (optionally saying HELLO), sends `bytes`, and returns the first reply's bytes. */
  async function firstReply(bytes: Uint8Array, helloFirst: boolean): Promise<Buffer> {
    const ws = new WebSocket(relay.url);
    add(() => ws.terminate());
    const replies: Buffer[] = [];
    ws.on('message', (d: Buffer) => replies.push(d));
    await new Promise(resolve => ws.once('open', resolve));
    if (helloFirst) {
      ws.send(encode([FrameType.Hello, [1], `caller-${Math.random()}`]));
      await until(() => replies.length === 1, 5000, 'WELCOME');
      replies.shift();
    }
    ws.send(bytes);
    await until(() => replies.length > 0, 5000, 'a reply');
    return replies[0];
  }

  // Relay: ERROR messages quote client input without a bound, so a reply can
  // outgrow the 4096-byte header strings every node decodes, and the node
  // drops it ("Ignored a frame from the relay"). The first case also turns
  // 30 KB in into 120 KB out.
  it.each<[string, Uint8Array, boolean, RelayErrorCode]>([
    ['an unknown frame type given as 30 KB of bin', encode([new Uint8Array(30_000).fill(0xff), 1]), false, RelayErrorCode.BAD_FRAME],
    [
      'a HELLO offering 1200 unsupported versions',
      encode([FrameType.Hello, Array(1200).fill(0xffff_ffff), 'n']),
      false,
      RelayErrorCode.PROTOCOL_MISMATCH,
    ],
    [
      'a HELLO with 400 malformed subscriptions',
      encode([FrameType.Hello, [1], 'n', null, [], Array(400).fill('a.>.b')]),
      false,
      RelayErrorCode.BAD_FRAME,
    ],
    [
      'a REQUEST for a 4090-byte pattern nobody serves',
      encode([FrameType.Request, 5, 'p'.repeat(4090), new Uint8Array([0xc0]), 1000]),
      true,
      RelayErrorCode.MICROSERVICE_OFFLINE,
    ],
    ['a WAIT for a 4090-byte pattern that times out', encode([FrameType.Wait, 6, 'p'.repeat(4090), 1]), true, RelayErrorCode.TIMEOUT],
    // The codec reads the id leniently for correlation, with no upper bound, and the ERROR echoes it.
    ['a frame whose id is over 2^32-1', encode([FrameType.Request, 2 ** 32, 'p']), false, RelayErrorCode.BAD_FRAME],
  ])('answers %s with an ERROR a node can decode', async (_, bytes, helloFirst, code) => {
    const reply = await firstReply(bytes, helloFirst);
    let frame: Frame | undefined;
    let problem = '';
    try {
      frame = nodeCodec.decode(reply);
    } catch (err) {
      problem = `${reply.length}-byte reply: ${(err as Error).message.slice(0, 120)}`;
    }
    expect(problem).toBe('');
    expect(frame).toMatchObject({ type: FrameType.Error, code });
    expect(reply.length).toBeLessThanOrEqual(bytes.length + 256);
  });

  it('a real client calling a 4090-byte pattern nobody serves gets MICROSERVICE_OFFLINE at once, not TIMEOUT', async () => {
    const client = await startClient({ urls: [relay.url] });
    add(() => client.close());
    const record = new WsRelayRecordBuilder('x').setTimeout(500).build();
    const err = await rejection(firstValueFrom(client.send('p'.repeat(4090), record)));
    expect(err).toMatchObject({ code: RelayErrorCode.MICROSERVICE_OFFLINE });
  });

  // Relay: EstablishedSessionGuard runs before an earlier HELLO's handler has
  // (that one waits on two async guards), so frames pipelined right after
  // HELLO are refused "HELLO must be the first frame" although it was.
  it('handles frames pipelined right after HELLO in order, as after WELCOME', async () => {
    const node = track(await RawNode.open(relay.url));
    node.send(helloFrame('pipeliner', { patterns: ['pipelined'] }));
    node.send({ type: FrameType.Discover, id: 3 });
    node.send({ type: FrameType.Wait, id: 4, pattern: 'pipelined', timeoutMs: 1000 });
    node.send({ type: FrameType.Ping });
    await node.next(f => f.type === FrameType.Welcome);
    await node.next(f => f.type === FrameType.Pong);
    node.send({ type: FrameType.Ping }); // a second round trip: every earlier answer is in
    await node.next(f => f.type === FrameType.Pong);
    expect(node.frames.filter(f => f.type === FrameType.Error)).toEqual([]);
    expect(node.frames).toEqual(
      expect.arrayContaining([expect.objectContaining({ type: FrameType.Nodes, id: 3 }), { type: FrameType.Ack, id: 4, recipients: 1 }]),
    );
  });

  // Relay: SubscriptionIndex keeps each queue group's round-robin turn
  // forever, so every queue name ever used grows the relay's memory.
  it("forgets a queue group's round-robin turn once its last member has gone", async () => {
    const router = relay.app.get(RelayCore);
    // Keeps the (only) tenant's routing state alive: it is dropped with its last connection.
    const emitter = track(await RawNode.hello(relay.url, 'emitter'));
    const before = books(router);
    const members = await Promise.all(
      Array.from({ length: 20 }, async (_, i) =>
        track(await RawNode.hello(relay.url, `member-${i}`, { events: ['turns.x'], queue: `group-${i}` })),
      ),
    );
    emitter.send({ type: FrameType.Event, id: 1, pattern: 'turns.x', payload: encode(1), peer: null, ext: null, claims: null });
    expect(await emitter.next(f => f.type === FrameType.Ack)).toMatchObject({ id: 1, recipients: 20 });
    for (const m of members) m.close();
    await until(() => router.connectionCount === before.sessions, 5000, 'the members to be dropped');
    expect(books(router)).toEqual(before);
  });
});
