/**
 * Chaos (issue 4): relays and providers are real processes (`apps/relay`,
 * `test/processes/provider.ts`), so SIGKILL, SIGSTOP and SIGTERM are real;
 * clients run here and keep calling throughout, recording every outcome with
 * its timing. What each test pins, under that continuous load:
 *
 * - a rolling restart of three providers (SIGTERM drains) fails no call;
 * - SIGKILL of one of three providers fails only the calls in flight at it,
 *   each with PROVIDER_DISCONNECTED in under a second;
 * - a SIGSTOPped provider is dropped within two heartbeat intervals, and no
 *   call hangs;
 * - a relay restarted on its port, after a crash (SIGKILL) or a drain
 *   (SIGTERM), has every node back within the maximum reconnect backoff, and
 *   calls succeed again;
 * - of two relays in 'failover' mode, killing the active one moves every node
 *   to the other and calls go on after a bounded pause;
 * - an event with `ack: 'handlers'` whose queue member is SIGKILLed mid-event
 *   is handled by another member, and the emitter is told it was delivered;
 * - a client that never reads its socket costs the relay no more than its
 *   byte budget and is closed with SLOW_CONSUMER (4507).
 */
import { CloseCode, encodePayload, FrameType, RelayErrorCode } from '@wsrelay/protocol';
import { type WsRelayClient, WsRelayRecordBuilder } from '@wsrelay/transport';
import { readFileSync } from 'node:fs';
import { firstValueFrom } from 'rxjs';
import { discoverUntil } from './support/cluster.js';
import { startClient, until, untilAsync, useCleanup } from './support/harness.js';
import { load } from './support/load.js';
import { type ProviderProcess, spawnProvider } from './support/provider-process.js';
import { RawNode } from './support/raw-node.js';
import { type RelayProcess, spawnRelay } from './support/relay-process.js';

/** Relay and node heartbeat interval: short, so a frozen node is found fast. */
const HEARTBEAT_MS = 300;
/** Every node's reconnect backoff. */
const RECONNECT = { initialDelayMs: 50, maxDelayMs: 500 };
/** A call's deadline: a call that hangs shows as TIMEOUT, long after every bound below. */
const CALL_TIMEOUT_MS = 5000;
/** Room for timers, pipes and the event loop on a busy 2-core machine. */
const SLACK_MS = 250;

/** Sequence numbers of 'work' requests a provider started (REQ) and answered (RES), from its lines up to `upTo`. */
function requestsAt(p: ProviderProcess, upTo = p.lines.length) {
  const started = new Set<number>();
  const answered = new Set<number>();
  for (const { text } of p.lines.slice(0, upTo)) {
    const m = /^(REQ|RES) (\d+)$/.exec(text);
    if (m) (m[1] === 'REQ' ? started : answered).add(Number(m[2]));
  }
  return { started, answered, unanswered: [...started].filter(s => !answered.has(s)) };
}

/** The maximum of a TCP buffer sysctl (`tcp_rmem`, `tcp_wmem`), in bytes; 16 MiB where it cannot be read. */
function socketBufferMax(name: 'tcp_rmem' | 'tcp_wmem'): number {
  try {
    const max = Number(readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8').trim().split(/\s+/)[2]);
    return Number.isInteger(max) && max > 0 ? max : 16 * 1024 * 1024;
  } catch {
    return 16 * 1024 * 1024;
  }
}

describe('chaos (real relay and provider processes, under load)', () => {
  // SIGKILL also ends a SIGSTOPped process; clients close first, so none is left reconnecting.
  const { add } = useCleanup();

  async function relay(env: Record<string, string> = {}): Promise<RelayProcess> {
    const r = await spawnRelay({ RELAY_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS), ...env });
    add(() => r.kill('SIGKILL'));
    return r;
  }

  async function provider(nodeId: string, urls: string[], env: Record<string, string> = {}): Promise<ProviderProcess> {
    const p = await spawnProvider({
      PROVIDER_URLS: urls.join(','),
      PROVIDER_NODE_ID: nodeId,
      PROVIDER_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
      PROVIDER_RECONNECT_INITIAL_DELAY_MS: String(RECONNECT.initialDelayMs),
      PROVIDER_RECONNECT_MAX_DELAY_MS: String(RECONNECT.maxDelayMs),
      ...env,
    });
    add(() => p.kill('SIGKILL'));
    return p;
  }

  function providers(ids: string[], urls: string[], env: Record<string, string> = {}): Promise<ProviderProcess[]> {
    return Promise.all(ids.map(id => provider(id, urls, env)));
  }

  async function client(nodeId: string, urls: string[]): Promise<WsRelayClient> {
    const c = await startClient({ urls, nodeId, timeoutMs: CALL_TIMEOUT_MS, heartbeatIntervalMs: HEARTBEAT_MS, reconnect: RECONNECT });
    add(() => c.close());
    return c;
  }

  /** Clients c0 and c1 on `urls`, once c0's relay knows every one of `ids`; then load through both. */
  async function loadThroughTwo(urls: string[], ids: string[], perClient?: number) {
    const c0 = await client('c0', urls);
    const c1 = await client('c1', urls);
    await discoverUntil(c0, ids);
    const run = load(
      [
        ['c0', c0],
        ['c1', c1],
      ],
      'work',
      perClient,
    );
    return { c0, c1, run };
  }

  /** Polls a relay's GET /status/detail until `nodes` nodes completed HELLO there; resolves with when that was seen. */
  async function relayNodes(r: RelayProcess, nodes: number, timeoutMs = 10_000): Promise<number> {
    await untilAsync(async () => (await r.status()).nodes === nodes, timeoutMs, `${nodes} nodes on the relay`);
    return Date.now();
  }

  it('a rolling restart of three providers (SIGTERM drains, then a new process takes the node id): zero failed calls', async () => {
    const r = await relay();
    const ids = ['p0', 'p1', 'p2'];
    const env = { PROVIDER_DELAY_MS: '50', PROVIDER_LOG_REQUESTS: '1' };
    const ps = await providers(ids, [r.url], env);
    const { run } = await loadThroughTwo([r.url], ids);
    const restarts: Array<{ old: ProviderProcess; fresh: ProviderProcess; inFlight: number[]; exitCode: number | null }> = [];
    try {
      await run.succeeded(100);
      for (let i = 0; i < ps.length; i++) {
        const old = ps[i];
        // Calls are in flight at it when SIGTERM comes: started there, not answered yet.
        await until(() => requestsAt(old).unanswered.length > 0, 5000, `a call in flight at ${old.nodeId}`);
        const inFlight = requestsAt(old).unanswered;
        const exitCode = await old.stop();
        const fresh = await provider(old.nodeId, [r.url], env);
        await run.servedBy(fresh.identity, Date.now());
        restarts.push({ old, fresh, inFlight, exitCode });
        ps[i] = fresh;
      }
      await run.succeeded(100);
    } finally {
      await run.stop();
    }
    expect(run.failed()).toEqual([]);
    for (const { old, fresh, inFlight, exitCode } of restarts) {
      // app.close() resolved (it drained) and the process exited cleanly...
      expect(exitCode).toBe(0);
      expect(old.lines.map(l => l.text)).toContain('CLOSED');
      // ...having answered the calls it had in flight at SIGTERM itself: they were not lost or retried elsewhere.
      for (const seq of inFlight) expect(run.outcomes.find(o => o.seq === seq)).toMatchObject({ ok: true, node: old.identity });
      // The new process took the node id over and served.
      expect(run.outcomes.some(o => o.node === fresh.identity)).toBe(true);
    }
  }, 60_000);

  it('SIGKILL of one of three providers: only its in-flight calls fail, each with PROVIDER_DISCONNECTED in under 1 s; all others succeed', async () => {
    const r = await relay();
    const ids = ['p0', 'p1', 'p2'];
    const ps = await providers(ids, [r.url], { PROVIDER_DELAY_MS: '100', PROVIDER_LOG_REQUESTS: '1' });
    const [, victim] = ps;
    const { run } = await loadThroughTwo([r.url], ids, 6);
    let killedAt = 0;
    try {
      await run.succeeded(100);
      // Killed as a call starts there: at least that one is in flight, not answered.
      killedAt = await victim.killAtNext(/^REQ \d+$/, 'SIGKILL');
      await run.succeeded(150);
    } finally {
      await run.stop();
    }
    const failed = run.failed();
    const atVictim = requestsAt(victim);
    const atSurvivors = new Set(ps.filter(p => p !== victim).flatMap(p => [...requestsAt(p).started]));
    // Every call that was in flight at the victim failed (none of them can have been answered)...
    expect(atVictim.unanswered.length).toBeGreaterThan(0);
    expect(failed.map(f => f.seq)).toEqual(expect.arrayContaining(atVictim.unanswered));
    // The relay fails what its dead provider held as soon as it sees the socket close.
    const noticedAt = Math.min(...failed.map(f => f.settledAt));
    for (const f of failed) {
      // ...and nothing else did: each failure was a call routed to the victim before the relay
      // saw it die (none had reached a surviving provider, none was sent after the relay knew),
      expect(atSurvivors.has(f.seq)).toBe(false);
      expect(f.startedAt).toBeLessThanOrEqual(noticedAt);
      // typed, and fast.
      expect(f.code).toBe(RelayErrorCode.PROVIDER_DISCONNECTED);
      expect(f.settledAt - killedAt).toBeLessThan(1000);
    }
    // The rest went on at the two survivors.
    const after = run.outcomes.filter(o => o.startedAt > noticedAt);
    expect(after.filter(o => !o.ok)).toEqual([]);
    expect(new Set(after.map(o => o.node))).toEqual(new Set([ps[0].identity, ps[2].identity]));
  }, 60_000);

  it('SIGSTOP of a provider: the relay drops it within two heartbeat intervals; no call hangs; after SIGCONT it serves again', async () => {
    const r = await relay();
    const ids = ['p0', 'p1', 'p2'];
    const ps = await providers(ids, [r.url], { PROVIDER_DELAY_MS: '50', PROVIDER_LOG_REQUESTS: '1' });
    const [, victim] = ps;
    const { run } = await loadThroughTwo([r.url], ids);
    let stoppedAt = 0;
    let detectedAt = 0;
    let linesAtDetection = 0;
    try {
      await run.succeeded(100);
      // Frozen as a call starts there: at least that one is in flight, not answered.
      stoppedAt = await victim.killAtNext(/^REQ \d+$/, 'SIGSTOP');
      await until(() => r.output.some(l => /Node p1 missed its heartbeat/.test(l)), 5000, 'the relay dropping p1');
      detectedAt = Date.now();
      linesAtDetection = victim.lines.length;
      await run.succeeded(100);
      const continuedAt = Date.now();
      await victim.kill('SIGCONT');
      // It finds its connection gone, reconnects and serves again.
      await run.servedBy(victim.identity, continuedAt);
    } finally {
      await run.stop();
    }
    expect(detectedAt - stoppedAt).toBeLessThanOrEqual(2 * HEARTBEAT_MS + SLACK_MS);
    // No call hung: every one settled well within the detection bound, none ran into its deadline.
    expect(run.outcomes.filter(o => o.code === RelayErrorCode.TIMEOUT)).toEqual([]);
    const longest = Math.max(...run.outcomes.map(o => o.settledAt - o.startedAt));
    expect(longest).toBeLessThanOrEqual(2 * HEARTBEAT_MS + SLACK_MS + 50);
    // What failed was what the frozen provider held, with PROVIDER_DISCONNECTED at the drop.
    const failed = run.failed();
    const atVictim = requestsAt(victim, linesAtDetection);
    expect(atVictim.unanswered.length).toBeGreaterThan(0);
    expect(failed.map(f => f.seq)).toEqual(expect.arrayContaining(atVictim.unanswered));
    const atSurvivors = new Set(ps.filter(p => p !== victim).flatMap(p => [...requestsAt(p).started]));
    for (const f of failed) {
      expect(f.code).toBe(RelayErrorCode.PROVIDER_DISCONNECTED);
      expect(atSurvivors.has(f.seq)).toBe(false);
      expect(f.settledAt).toBeGreaterThanOrEqual(stoppedAt);
      expect(f.settledAt - stoppedAt).toBeLessThanOrEqual(2 * HEARTBEAT_MS + SLACK_MS);
    }
  }, 60_000);

  it.each([
    ['SIGKILL', 'a crash: calls in flight through it fail with RELAY_UNAVAILABLE'],
    ['SIGTERM', 'a drain: calls in flight through it complete'],
  ] as const)(
    'a relay restart (%s, a new process on the same port): every node back within the maximum backoff, and calls succeed again (%s)',
    async (signal, _why) => {
      const first = await relay({ RELAY_DRAIN_TIMEOUT_MS: '5000' });
      const ids = ['p0', 'p1', 'p2'];
      const ps = await providers(ids, [first.url], { PROVIDER_DELAY_MS: '20' });
      const { c0, c1, run } = await loadThroughTwo([first.url], ids);
      const clientEvents = new Map<WsRelayClient, { attempts: number; connectedAt: number[] }>();
      for (const c of [c0, c1]) {
        const seen = { attempts: 0, connectedAt: [] as number[] };
        clientEvents.set(c, seen);
        c.on('reconnecting', attempt => (seen.attempts = Math.max(seen.attempts, attempt)));
        c.on('connected', () => seen.connectedAt.push(Date.now()));
      }
      let killedAt = 0;
      let upAt = 0;
      const backAt: number[] = [];
      try {
        await run.succeeded(100);
        killedAt = Date.now();
        await first.kill(signal);
        // Every node has backed off to the cap: from the fifth retry on, the delay is maxDelayMs (less jitter) at most.
        await Promise.all(ps.map(p => p.line(/^STATUS reconnecting ([5-9]|\d{2,}) /)));
        await until(() => [...clientEvents.values()].every(e => e.attempts >= 5), 10_000, 'the clients backing off to the cap');
        // With a startup grace (the default is 5 s; longer here for a loaded machine): calls that come back before the providers wait for them.
        const second = await relay({ RELAY_PORT: String(first.port), RELAY_STARTUP_GRACE_MS: '10000' });
        upAt = Date.now();
        // A provider says when it is connected again (its own clock: the same machine's).
        const reconnectedAt = (p: ProviderProcess) =>
          p
            .matching(/^STATUS connected at=(\d+)$/)
            .map(m => Number(m[1]))
            .find(t => t > killedAt);
        for (const p of ps) {
          await until(() => reconnectedAt(p) !== undefined, 5000, `${p.nodeId} reconnected`);
          backAt.push(reconnectedAt(p)!);
        }
        for (const seen of clientEvents.values()) {
          await until(() => seen.connectedAt.some(t => t > killedAt), 5000, 'a client reconnected');
          backAt.push(Math.min(...seen.connectedAt.filter(t => t > killedAt)));
        }
        await relayNodes(second, ids.length + 2);
        for (const p of ps) await run.servedBy(p.identity, Math.max(...backAt));
        await run.succeeded(100);
      } finally {
        await run.stop();
      }
      for (const t of backAt) expect(t - upAt).toBeLessThanOrEqual(RECONNECT.maxDelayMs + SLACK_MS);
      // What failed meanwhile failed typed and never hung: only calls in flight at a crash (RELAY_UNAVAILABLE;
      // a drain lets those complete). None sent once a client was back but before the providers were failed
      // (MICROSERVICE_OFFLINE): the new relay held them in its startup grace.
      const allBack = Math.max(...backAt);
      const failed = run.failed();
      if (signal === 'SIGTERM') expect(failed).toEqual([]);
      for (const f of failed) {
        expect(f.code).toBe(RelayErrorCode.RELAY_UNAVAILABLE);
        expect(f.settledAt).toBeGreaterThanOrEqual(killedAt);
        expect(f.settledAt).toBeLessThanOrEqual(allBack + SLACK_MS);
      }
    },
    60_000,
  );

  it("two relays, mode 'failover': SIGKILL of the active one moves every node to the other, and calls go on after a bounded pause", async () => {
    const [a, b] = await Promise.all([relay(), relay()]);
    const urls = [a.url, b.url];
    const ids = ['p0', 'p1', 'p2'];
    const ps = await providers(ids, urls, { PROVIDER_DELAY_MS: '20' });
    const { c0, c1, run } = await loadThroughTwo(urls, ids);
    // 'failover' (the default) keeps one connection: every node is on the first relay.
    expect((await a.status()).nodes).toBe(ids.length + 2);
    expect((await b.status()).nodes).toBe(0);
    let killedAt = 0;
    let movedAt = 0;
    const resumedAt: number[] = [];
    try {
      await run.succeeded(100);
      killedAt = Date.now();
      await a.kill('SIGKILL');
      movedAt = await relayNodes(b, ids.length + 2);
      for (const p of ps) {
        await run.servedBy(p.identity, killedAt);
        resumedAt.push(
          Math.min(...run.outcomes.filter(o => o.ok && o.node === p.identity && o.startedAt >= killedAt).map(o => o.settledAt)),
        );
      }
      await run.succeeded(100);
    } finally {
      await run.stop();
    }
    // Every node moved at its first retries, and every provider was serving again, within one maximum backoff.
    const pauseBound = RECONNECT.maxDelayMs + SLACK_MS;
    expect(movedAt - killedAt).toBeLessThanOrEqual(pauseBound);
    for (const t of resumedAt) expect(t - killedAt).toBeLessThanOrEqual(pauseBound);
    expect(c0.relayStatus()[b.url]).toBe('connected');
    expect(c1.relayStatus()[b.url]).toBe('connected');
    // Only the pause failed, typed: calls in flight on the dead relay, or sent on the new one before the providers got there.
    for (const f of run.failed()) {
      expect([RelayErrorCode.RELAY_UNAVAILABLE, RelayErrorCode.MICROSERVICE_OFFLINE]).toContain(f.code);
      expect(f.settledAt).toBeGreaterThanOrEqual(killedAt);
      expect(f.settledAt - killedAt).toBeLessThanOrEqual(pauseBound);
    }
  }, 60_000);

  it("ack: 'handlers' with a queue member SIGKILLed mid-event: another member handles the event and the emitter is told it was delivered", async () => {
    const r = await relay({ RELAY_EVENT_ACK_TIMEOUT_MS: '5000', RELAY_MAX_EVENT_ATTEMPTS: '3' });
    const members = await providers(['q0', 'q1', 'q2'], [r.url], { PROVIDER_QUEUE: 'workers' });
    const emitter = await client('emitter', [r.url]);
    await discoverUntil(
      emitter,
      members.map(m => m.nodeId),
    );
    const handlersAck = (job: { seq: number; hold?: boolean; delayMs?: number }) =>
      new WsRelayRecordBuilder(job).setAck('handlers').build();

    // The load: events with handler acks to the group, four at a time, each taking 20 ms to handle.
    const emits: Array<{ seq: number; ok: boolean; recipients?: number; code?: string }> = [];
    let running = true;
    let seq = 0;
    const loops = Array.from({ length: 4 }, async () => {
      while (running) {
        const n = ++seq;
        try {
          const ack = await firstValueFrom(emitter.emit<{ recipients: number }>('jobs.work', handlersAck({ seq: n, delayMs: 20 })));
          emits.push({ seq: n, ok: true, recipients: ack.recipients });
        } catch (err) {
          emits.push({ seq: n, ok: false, code: (err as { code?: string }).code ?? String(err) });
          await new Promise(res => setTimeout(res, 5));
        }
      }
    });
    const acked = (n: number) => {
      const target = emits.filter(e => e.ok).length + n;
      return until(() => emits.filter(e => e.ok).length >= target, 15_000, `${n} more acked events`);
    };
    const heldSeq = 1_000_000;
    let victim: ProviderProcess | undefined;
    let killedAt = 0;
    let ackedAt = 0;
    let heldAck: { recipients: number } | undefined;
    try {
      await acked(100);
      // One event whose first delivery never finishes: its member is killed while handling it.
      const held = firstValueFrom(emitter.emit<{ recipients: number }>('jobs.work', handlersAck({ seq: heldSeq, hold: true })));
      const startLine = new RegExp(`^EVENT-START ${heldSeq} 1$`);
      await until(() => members.some(m => m.lines.some(l => startLine.test(l.text))), 5000, 'the held event at a member');
      victim = members.find(m => m.lines.some(l => startLine.test(l.text)))!;
      killedAt = Date.now();
      await victim.kill('SIGKILL');
      heldAck = await held;
      ackedAt = Date.now();
      await acked(100);
    } finally {
      running = false;
      await Promise.all(loops);
    }
    const survivors = members.filter(m => m !== victim);
    // Delivered: handled by another member, on a later attempt, and the emitter was ACKed for one recipient...
    expect(heldAck).toEqual({ recipients: 1 });
    const redelivered = survivors.flatMap(m => m.matching(new RegExp(`^EVENT ${heldSeq} (\\d+)$`)));
    expect(redelivered).toHaveLength(1);
    expect(Number(redelivered[0][1])).toBeGreaterThanOrEqual(2);
    // ...when the member died, not at the relay's 5 s ack timeout.
    expect(ackedAt - killedAt).toBeLessThan(1000);
    // Every other event of the load was ACKed too, each handled by a member (the survivors took what the victim held).
    expect(emits.filter(e => !e.ok)).toEqual([]);
    expect(emits.every(e => e.recipients === 1)).toBe(true);
    const handledBy = (s: number) => members.some(m => m.lines.some(l => l.text.startsWith(`EVENT ${s} `)));
    await until(() => emits.every(e => handledBy(e.seq)), 5000, 'a handled line for every acked event');
    const victimStarted = victim.matching(/^EVENT-START (\d+) \d+$/).map(m => Number(m[1]));
    const victimFinished = new Set(victim.matching(/^EVENT (\d+) \d+$/).map(m => Number(m[1])));
    const cutOff = victimStarted.filter(s => !victimFinished.has(s));
    expect(cutOff).toContain(heldSeq);
    for (const s of cutOff) {
      const again = survivors.flatMap(m => m.matching(new RegExp(`^EVENT ${s} (\\d+)$`)));
      expect(again.length).toBeGreaterThanOrEqual(1);
      expect(Number(again[0][1])).toBeGreaterThanOrEqual(2);
    }
  }, 60_000);

  it('a client that never reads its socket: the relay holds no more than its byte budget for it, then closes it with SLOW_CONSUMER; other calls go on', async () => {
    const budget = 1024 * 1024;
    const blobBytes = 256 * 1024;
    const batch = 32; // 8 MiB asked for per batch
    // Besides the relay's queue, the kernel holds unsent bytes: the relay's socket send buffer
    // and the client's receive buffer, each at most its sysctl maximum (Linux; 16 MiB elsewhere).
    const kernelBytes = socketBufferMax('tcp_wmem') + socketBufferMax('tcp_rmem');
    const mostSent = budget + blobBytes + kernelBytes;
    // Ask for at least twice what could reach the client if the budget held: the rest must be dropped.
    const batches = Math.max(10, Math.ceil((2 * mostSent) / (batch * blobBytes)));
    const flood = batches * batch * blobBytes;
    // A long heartbeat: the stalled socket must be closed for its backlog, not for its silence.
    const r = await relay({ RELAY_MAX_BUFFERED_BYTES: String(budget), RELAY_HEARTBEAT_INTERVAL_MS: '10000' });
    await provider('p0', [r.url]);
    const c0 = await client('c0', [r.url]);
    await discoverUntil(c0, ['p0']);
    const perClient = 2;
    const run = load([['c0', c0]], 'work', perClient);
    const sluggish = await RawNode.hello(r.url, 'sluggish');
    add(async () => sluggish.close());
    // The relay cuts it in the end; our late writes may then fail, which is expected.
    sluggish.socket.on('error', () => undefined);
    const tcp = sluggish.tcp!;
    /** The relay's RSS at each look, with how many batches had been sent by then. */
    const rss: Array<{ sent: number; bytes: number }> = [];
    let closed: { code: number; reason: string } | undefined;
    try {
      await run.succeeded(50);
      rss.push({ sent: 0, bytes: (await r.status()).memory.rssBytes });
      tcp.pause();
      let id = 0;
      for (let i = 1; i <= batches; i++) {
        for (let j = 0; j < batch; j++) {
          id++;
          sluggish.send({
            type: FrameType.Request,
            id,
            pattern: 'blob',
            payload: encodePayload({ seq: id, bytes: blobBytes }),
            timeoutMs: 30_000,
            peer: null,
            ext: null,
            claims: null,
          });
        }
        // Until the relay has settled every answer of the batch (only the load's calls left in flight).
        for (;;) {
          const status = await r.status();
          rss.push({ sent: i, bytes: status.memory.rssBytes });
          if (status.inFlight <= perClient) break;
          await new Promise(res => setTimeout(res, 10));
        }
      }
      await run.succeeded(50);
      // Reading again, it finds the close code behind what the relay had queued for it.
      tcp.resume();
      closed = await sluggish.closed(10_000);
      await until(() => r.output.some(l => /Closed sluggish as a slow consumer/.test(l)), 5000, "the relay's log of the close");
    } finally {
      await run.stop();
    }
    expect(closed?.code).toBe(CloseCode.SLOW_CONSUMER);
    // What reached it is what the relay queued (its budget and the frame that crossed it) and what
    // the kernel held, far less than it asked for: the rest was never queued for it.
    const received = sluggish.frames.filter(f => f.type === FrameType.Response).length * blobBytes;
    expect(received).toBeLessThanOrEqual(mostSent);
    expect(mostSent).toBeLessThan(flood / 2);
    // Nor did the relay keep it anywhere else: its memory stopped growing with the backlog. (RSS
    // also holds garbage of the frames that went through, a plateau of some tens of MiB, so the
    // measure is growth over the second half of the flood, which a kept backlog would add whole.)
    const peak = (from: number, to: number) => Math.max(...rss.filter(s => s.sent >= from && s.sent <= to).map(s => s.bytes));
    const half = Math.ceil(batches / 2);
    expect(peak(half + 1, batches) - peak(0, half)).toBeLessThan(flood / 4);
    expect(run.failed()).toEqual([]);
  }, 60_000);
});
