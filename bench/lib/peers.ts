/** Starts each peer's long-lived processes (relay, provider, fan-out subscribers) and says how to load it. */
import { connect } from 'node:net';
import { Child } from './child.js';
import { commandName, pidListeningOn } from './proc.js';
import { FANOUT_SUBSCRIBERS, PEER_LABELS, type PeerId } from './types.js';

export const NATS_HOST = '127.0.0.1';
export const NATS_PORT = 4222;
export const REDIS_HOST = '127.0.0.1';
export const REDIS_PORT = 6379;

export interface Peer {
  id: PeerId;
  label: string;
  /** The process between client and provider: our relay, the raw relay, or a shared broker. */
  hop?: { role: 'relay' | 'broker'; name: string; pid: number | undefined; shared: boolean };
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

async function brokerHop(name: string, port: number): Promise<Peer['hop']> {
  const pid = pidListeningOn(port);
  return { role: 'broker', name: pid === undefined ? name : commandName(pid), pid, shared: true };
}

/** Starts one peer; throws (after stopping what it started) when it cannot run. */
export async function startPeer(id: PeerId, prefix: string): Promise<Peer> {
  const children: Child[] = [];
  const track = <T extends Child>(c: T) => (children.push(c), c);
  try {
    switch (id) {
      case 'wsrelay': {
        const relay = track(new Child('relay', 'apps/relay/src/main.ts', { env: { RELAY_PORT: '0', RELAY_HOST: '127.0.0.1' } }));
        const [, url] = await relay.next(/Relay listening on (ws:\/\/\S+)/, 60_000);
        const { provider, subs } = nestProcesses('wsrelay', { RELAY_URL: url }, prefix, false, FANOUT_SUBSCRIBERS);
        [provider, ...subs].forEach(track);
        await Promise.all([provider, ...subs].map(ready));
        return {
          id,
          label: PEER_LABELS[id],
          hop: { role: 'relay', name: 'relay', pid: relay.pid, shared: false },
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
        if (down !== undefined) throw new Error(down);
        const env: Record<string, string> = nats
          ? { NATS_URL: `nats://${host}:${port}` }
          : { REDIS_HOST: host, REDIS_PORT: String(port) };
        const { provider, subs } = nestProcesses(nats ? 'nats' : 'redis', env, prefix, nats, FANOUT_SUBSCRIBERS);
        [provider, ...subs].forEach(track);
        const credits = await Promise.all([provider, ...subs].map(ready));
        return {
          id,
          label: PEER_LABELS[id],
          hop: await brokerHop(nats ? 'nats-server' : 'redis-server', port),
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
        const subs = Array.from({ length: FANOUT_SUBSCRIBERS }, (_, i) =>
          track(new Child(`raw subscriber ${i + 1}`, 'bench/peers/raw-provider.ts', { env: { ...env, ROLE: 'subscriber' } })),
        );
        await Promise.all([provider, ...subs].map(ready));
        return {
          id,
          label: PEER_LABELS[id],
          hop: { role: 'relay', name: 'raw relay', pid: relay.pid, shared: false },
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
