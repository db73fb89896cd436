/**
 * Starts each peer's long-lived processes (relay, provider, fan-out
 * subscribers) and says how to load it; for W7, two clustered relays and a
 * provider on the second.
 */
import { connect } from 'node:net';
import { RELAY_BIN, relayNodeArgs } from '../../scripts/processes.js';
import { Child } from './child.js';
import { commandName, pidListeningOn } from './proc.js';
import { FANOUT_SUBSCRIBERS, PEER_LABELS, type PeerId, W7_PLACEMENT_LABELS } from './types.js';

export const NATS_HOST = '127.0.0.1';
export const NATS_PORT = 4222;
export const REDIS_HOST = '127.0.0.1';
export const REDIS_PORT = 6379;

/** A process on the way between client and provider, measured in every window. */
export interface Hop {
  /** relay | broker; W7: relay A | relay B | broker */
  role: string;
  name: string;
  /** undefined when /proc does not show it (a broker run by another user). */
  pid: number | undefined;
  /** A broker shared with other users of this machine. */
  shared: boolean;
}

export interface Peer {
  id: PeerId;
  label: string;
  /**
   * The processes between client and provider: our relay, the raw relay, or a
   * shared broker (none for Nest TCP); W7: both relays and Redis, in either placement.
   */
  hops: Hop[];
  /** W1–W4: answers echo, counts events. */
  provider: Child;
  /** W5: the fan-out subscribers (none when the transport cannot fan out). */
  subscribers: Child[];
  /** Credit ports (marks.ts) of the provider and the subscribers, for ACK=credit. */
  providerCredit: number;
  subscriberCredits: number[];
  loadEntry: string;
  loadEnv: Record<string, string>;
  /** How a publisher bounds its events in flight (see bench/load.ts). */
  eventAck: 'emit' | 'credit';
  /** Why W5 does not apply, when it does not. */
  noFanout?: string;
  children: Child[];
}

/** A peer's server (nats-server, redis-server) does not answer: the peer is skipped, nothing failed. */
export class ServerDownError extends Error {
  override readonly name = 'ServerDownError';
}

/** Resolves with undefined when something accepts TCP connections at host:port, else with the reason. */
export function probe(host: string, port: number, timeoutMs = 1000): Promise<string | undefined> {
  return new Promise(resolve => {
    const socket = connect(port, host);
    const done = (reason: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reason);
    };
    const timer = setTimeout(() => done(`no answer from ${host}:${port} within ${timeoutMs} ms`), timeoutMs);
    socket.once('connect', () => done(undefined));
    socket.once('error', (err: NodeJS.ErrnoException) => done(`cannot connect to ${host}:${port} (${err.code ?? err.message})`));
  });
}

async function ready(child: Child): Promise<{ port: number; credit: number }> {
  const m = await child.next(/READY(?: port=(\d+) credit=(\d+))?/, 60_000);
  return { port: Number(m[1] ?? 0), credit: Number(m[2] ?? 0) };
}

function nestProcesses(transport: string, env: Record<string, string>, prefix: string, credit: boolean, subscribers: number) {
  const base = { ...env, TRANSPORT: transport, BENCH_PREFIX: prefix, CREDIT: credit ? '1' : '0' };
  const provider = new Child(`${transport} provider`, 'bench/peers/provider.ts', { env: { ...base, ROLE: 'provider' } });
  const subs = Array.from(
    { length: subscribers },
    (_, i) => new Child(`${transport} subscriber ${i + 1}`, 'bench/peers/provider.ts', { env: { ...base, ROLE: 'subscriber' } }),
  );
  return { provider, subs };
}

function brokerHop(name: string, port: number): Hop {
  const pid = pidListeningOn(port);
  return { role: 'broker', name: pid === undefined ? name : commandName(pid), pid, shared: true };
}

/** Starts one peer (with `subscribers` fan-out subscribers, where it can fan out); throws (after stopping what it started) when it cannot run. */
export async function startPeer(id: PeerId, prefix: string, subscribers = FANOUT_SUBSCRIBERS): Promise<Peer> {
  const children: Child[] = [];
  const track = <T extends Child>(c: T) => (children.push(c), c);
  try {
    switch (id) {
      case 'wsrelay': {
        const relay = track(
          new Child('relay', RELAY_BIN, { nodeArgs: relayNodeArgs(), env: { RELAY_PORT: '0', RELAY_HOST: '127.0.0.1' } }),
        );
        const [, url] = await relay.next(/Relay listening on (ws:\/\/\S+)/, 60_000);
        const { provider, subs } = nestProcesses('wsrelay', { RELAY_URL: url }, prefix, false, subscribers);
        [provider, ...subs].forEach(track);
        await Promise.all([provider, ...subs].map(ready));
        return {
          id,
          label: PEER_LABELS[id],
          hops: [{ role: 'relay', name: 'relay', pid: relay.pid, shared: false }],
          provider,
          subscribers: subs,
          providerCredit: 0,
          subscriberCredits: [],
          loadEntry: 'bench/load.ts',
          loadEnv: { TRANSPORT: 'wsrelay', RELAY_URL: url },
          eventAck: 'emit',
          children,
        };
      }
      case 'nest-tcp': {
        const { provider } = nestProcesses('tcp', { TCP_PORT: '0' }, prefix, true, 0);
        track(provider);
        const { port, credit } = await ready(provider);
        return {
          id,
          label: PEER_LABELS[id],
          hops: [],
          provider,
          subscribers: [],
          providerCredit: credit,
          subscriberCredits: [],
          loadEntry: 'bench/load.ts',
          loadEnv: { TRANSPORT: 'tcp', TCP_PORT: String(port) },
          eventAck: 'credit',
          noFanout: 'n/a: Nest TCP connects a client to one server; it cannot fan out',
          children,
        };
      }
      case 'nest-nats':
      case 'nest-redis': {
        const nats = id === 'nest-nats';
        const [host, port] = nats ? [NATS_HOST, NATS_PORT] : [REDIS_HOST, REDIS_PORT];
        const down = await probe(host, port);
        if (down !== undefined) throw new ServerDownError(down);
        const env: Record<string, string> = nats ? { NATS_URL: `nats://${host}:${port}` } : { REDIS_HOST: host, REDIS_PORT: String(port) };
        const { provider, subs } = nestProcesses(nats ? 'nats' : 'redis', env, prefix, nats, subscribers);
        [provider, ...subs].forEach(track);
        const credits = await Promise.all([provider, ...subs].map(ready));
        return {
          id,
          label: PEER_LABELS[id],
          hops: [brokerHop(nats ? 'nats-server' : 'redis-server', port)],
          provider,
          subscribers: subs,
          providerCredit: credits[0].credit,
          subscriberCredits: credits.slice(1).map(c => c.credit),
          loadEntry: 'bench/load.ts',
          loadEnv: { TRANSPORT: nats ? 'nats' : 'redis', ...env },
          // NATS: emit() completes at the client's buffer. Redis: at the PUBLISH reply, the broker's ack.
          eventAck: nats ? 'credit' : 'emit',
          children,
        };
      }
      case 'raw-ws': {
        const relay = track(new Child('raw relay', 'bench/peers/raw-relay.ts', { env: { RAW_PORT: '0' } }));
        const [, url] = await relay.next(/Raw relay listening on (ws:\/\/\S+)/, 60_000);
        const env = { RAW_URL: url, BENCH_PREFIX: prefix };
        const provider = track(new Child('raw provider', 'bench/peers/raw-provider.ts', { env: { ...env, ROLE: 'provider' } }));
        const subs = Array.from({ length: subscribers }, (_, i) =>
          track(new Child(`raw subscriber ${i + 1}`, 'bench/peers/raw-provider.ts', { env: { ...env, ROLE: 'subscriber' } })),
        );
        await Promise.all([provider, ...subs].map(ready));
        return {
          id,
          label: PEER_LABELS[id],
          hops: [{ role: 'relay', name: 'raw relay', pid: relay.pid, shared: false }],
          provider,
          subscribers: subs,
          providerCredit: 0,
          subscriberCredits: [],
          loadEntry: 'bench/peers/raw-load.ts',
          loadEnv: { RAW_URL: url },
          eventAck: 'emit',
          children,
        };
      }
    }
  } catch (err) {
    await Promise.all(children.map(c => c.stop()));
    throw err;
  }
}

/** W7: two clustered relays and one provider on relay B; `same` loads relay B, `cross` relay A. */
export interface Cluster {
  same: Peer;
  cross: Peer;
  relayIds: string[];
  redis: string;
  channelPrefix: string;
  children: Child[];
}

/** The status token the bench's relays get (RELAY_STATUS_TOKEN), for their detailed status. */
const STATUS_TOKEN = 'bench-status-token';

/** What the relays' GET /status/detail says about the cluster (the fields the bench reads). */
interface RelayStatus {
  relayId: string;
  cluster: { healthy: boolean; relays: Array<{ relayId: string; nodes: number }> };
}

async function relayStatus(url: string): Promise<RelayStatus | string> {
  const { port } = new URL(url);
  try {
    const res = await fetch(`http://127.0.0.1:${port}/status/detail`, {
      headers: { authorization: `Bearer ${STATUS_TOKEN}` },
      signal: AbortSignal.timeout(2000),
    });
    return (await res.json()) as RelayStatus;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Resolves once each relay's /status/detail is healthy and lists the other one, and
 * relay A lists relay B's provider; the status endpoint is all there is to
 * wait on, so it is asked every 100 ms.
 */
async function clusterFormed(urls: { a: string; b: string }, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [a, b] = await Promise.all([relayStatus(urls.a), relayStatus(urls.b)]);
    const sees = (s: RelayStatus | string, nodes: number) =>
      typeof s !== 'string' && s.cluster.healthy && s.cluster.relays.length === 1 && s.cluster.relays[0].nodes >= nodes;
    if (sees(a, 1) && sees(b, 0)) return;
    if (Date.now() > deadline) {
      throw new Error(`the two relays did not form a cluster within ${timeoutMs} ms: A ${JSON.stringify(a)}, B ${JSON.stringify(b)}`);
    }
    await new Promise(r => setTimeout(r, 100));
  }
}

/** Starts W7's processes on the Redis at REDIS_HOST:REDIS_PORT; throws (after stopping what it started) when no cluster forms. */
export async function startCluster(prefix: string): Promise<Cluster> {
  const redis = `redis://${REDIS_HOST}:${REDIS_PORT}`;
  const channelPrefix = `${prefix}cluster`;
  const relayIds = ['bench-a', 'bench-b'];
  const children: Child[] = [];
  try {
    const [relayA, relayB] = relayIds.map((relayId, i) => {
      const env = {
        RELAY_PORT: '0',
        RELAY_HOST: '127.0.0.1',
        RELAY_REDIS_URL: redis,
        RELAY_CLUSTER_PREFIX: channelPrefix,
        RELAY_ID: relayId,
        RELAY_STATUS_TOKEN: STATUS_TOKEN,
      };
      const child = new Child(`relay ${'AB'[i]}`, RELAY_BIN, { nodeArgs: relayNodeArgs(), env });
      children.push(child);
      return child;
    });
    const [[, urlA], [, urlB]] = await Promise.all([relayA, relayB].map(r => r.next(/Relay listening on (ws:\/\/\S+)/, 60_000)));
    const { provider } = nestProcesses('wsrelay', { RELAY_URL: urlB }, prefix, false, 0);
    children.push(provider);
    await ready(provider);
    await clusterFormed({ a: urlA, b: urlB }, 30_000);
    const hops: Hop[] = [
      { role: 'relay A', name: `relay ${relayIds[0]}`, pid: relayA.pid, shared: false },
      { role: 'relay B', name: `relay ${relayIds[1]}`, pid: relayB.pid, shared: false },
      brokerHop('redis-server', REDIS_PORT),
    ];
    const peer = (url: string, label: string): Peer => ({
      id: 'wsrelay',
      label,
      hops,
      provider,
      subscribers: [],
      providerCredit: 0,
      subscriberCredits: [],
      loadEntry: 'bench/load.ts',
      loadEnv: { TRANSPORT: 'wsrelay', RELAY_URL: url },
      eventAck: 'emit',
      noFanout: 'n/a: W7 measures RPC only',
      children,
    });
    return {
      same: peer(urlB, W7_PLACEMENT_LABELS.same),
      cross: peer(urlA, W7_PLACEMENT_LABELS.cross),
      relayIds,
      redis,
      channelPrefix,
      children,
    };
  } catch (err) {
    await Promise.all(children.map(c => c.stop()));
    throw err;
  }
}
