/**
 * Setup shared by the RelayCore unit specs (src/core/relay-core.*.spec.ts): two relays on one
 * in-memory hub (no network), nodes that connect to them on fake sockets, the frames those nodes
 * send, and ways to wait for what the hub has in flight.
 */
import {
  encodePayload,
  type EventFrame,
  type Frame,
  FrameType,
  type HelloFrame,
  type RequestFrame,
  SUPPORTED_PROTOCOL_VERSIONS,
} from '@wsrelay/protocol';
import { afterEach, expect } from '@jest/globals';
import type WebSocket from 'ws';
import { OPEN_IDENTITY, RelayAuthService } from '../src/auth/relay-auth.service.js';
import { InMemoryBackplane, InMemoryHub } from '../src/cluster/in-memory.backplane.js';
import { createCluster } from '../src/core/create-cluster.js';
import { RelayCore } from '../src/core/relay-core.js';
import type { RelayModuleOptions } from '../src/interfaces/relay-options.interface.js';
import { resolveRelayOptions } from '../src/relay.options.js';
import type { Session } from '../src/session/session.js';
import { FakeSocket } from './fakes.js';

/** A node's connection to a relay: the fake socket it writes to, and the relay's session for it. */
export interface Conn {
  readonly socket: FakeSocket;
  readonly session: Session;
  readonly nodeId: string;
}

/** Waits (turns of the event loop, no fixed sleep) until `predicate` holds. */
export async function until(what: string, predicate: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise(resolve => setImmediate(resolve));
  }
}

/** A few turns of the event loop: whatever the in-memory backplane has in flight arrives. */
export async function turns(n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise(resolve => setImmediate(resolve));
}

export function framesOf<T extends Frame>(conn: Conn, type: T['type']): T[] {
  return conn.socket.frames.filter((f): f is T => f.type === type);
}

export function request(id: number, pattern: string, value: unknown, extra: Partial<RequestFrame> = {}): RequestFrame {
  return {
    type: FrameType.Request,
    id,
    pattern,
    payload: encodePayload(value),
    timeoutMs: 5000,
    peer: null,
    ext: null,
    claims: null,
    ...extra,
  };
}

export function event(id: number, pattern: string, value: unknown, extra: Partial<EventFrame> = {}): EventFrame {
  return { type: FrameType.Event, id, pattern, payload: encodePayload(value), peer: null, ext: null, claims: null, ...extra };
}

export { caught } from './fakes.js';

/** Relay `relayId` on `hub`, put in `cores` (for the spec to destroy after the test). */
function makeCore(hub: InMemoryHub, cores: RelayCore[], relayId: string, options: RelayModuleOptions = {}): RelayCore {
  const resolved = resolveRelayOptions({
    relayId,
    startupGraceMs: 0,
    drainTimeoutMs: 100,
    ...options,
    cluster: { backplane: new InMemoryBackplane(hub), heartbeatIntervalMs: 20, timeoutMs: 200 },
  });
  const core = new RelayCore(resolved, new RelayAuthService(resolved), createCluster(resolved));
  cores.push(core);
  return core;
}

/** Relays A and B on `hub` (B with `optionsB`), started, each knowing the other; both are put in `cores` as they are made. */
export async function startPair(hub: InMemoryHub, cores: RelayCore[], optionsB: RelayModuleOptions = {}): Promise<[RelayCore, RelayCore]> {
  const a = makeCore(hub, cores, 'A');
  const b = makeCore(hub, cores, 'B', optionsB);
  a.start();
  b.start();
  await until('A and B to know each other', () => a.status().cluster.relays.length === 1 && b.status().cluster.relays.length === 1);
  return [a, b];
}

/**
 * For a describe block: `pair()` makes relays A and B on a fresh in-memory hub (B with `optionsB`),
 * started and knowing each other; after each test they are destroyed and must have left the hub.
 */
export function twoRelays(): (optionsB?: RelayModuleOptions) => Promise<[RelayCore, RelayCore]> {
  let cores: RelayCore[] = [];
  let hub: InMemoryHub | undefined;
  afterEach(async () => {
    await Promise.all(cores.map(core => core.onModuleDestroy()));
    cores = [];
    expect(hub?.members.size ?? 0).toBe(0);
  });
  return optionsB => {
    hub = new InMemoryHub();
    return startPair(hub, cores, optionsB);
  };
}

/** A node that connects to `core` and says HELLO. */
export function connect(core: RelayCore, nodeId: string, announced: Partial<HelloFrame> = {}): Conn {
  const socket = new FakeSocket();
  const session = core.accept(socket as unknown as WebSocket, OPEN_IDENTITY);
  const hello: HelloFrame = {
    type: FrameType.Hello,
    versions: [...SUPPORTED_PROTOCOL_VERSIONS],
    nodeId,
    service: null,
    patterns: [],
    events: [],
    queue: null,
    ...announced,
  };
  core.hello(session, hello);
  return { socket, session, nodeId };
}

/** The connection closes, as `ws` reports it: the socket is closed and the relay drops it. */
export function disconnect(core: RelayCore, conn: Conn): void {
  conn.socket.close(1006);
  core.drop(conn.socket as unknown as WebSocket);
}

/** Until `core` routes `nodeId` of another relay. */
export function seen(core: RelayCore, nodeId: string): Promise<void> {
  return until(`${nodeId} to be routed by the other relay`, () => core.nodeDiagnostics(nodeId)?.routed === true);
}
