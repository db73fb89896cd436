/**
 * Stand-ins for the unit specs of the relay's parts: a socket that records
 * what is written to it, sessions and nodes on such sockets, and a cluster
 * of one that is not started (nothing goes to other relays). No network.
 */
import { type Frame, FrameCodec } from '@wsrelay/protocol';
import type WebSocket from 'ws';
import { type ConnectionIdentity, OPEN_IDENTITY } from '../src/auth/relay-auth.service.js';
import { InMemoryBackplane } from '../src/cluster/in-memory.backplane.js';
import { RelayCluster } from '../src/cluster/relay-cluster.js';
import { type Announcement, LocalNode } from '../src/routing/local-node.js';
import type { World } from '../src/routing/world.js';
import { Replies } from '../src/session/replies.js';
import { Session, type SendBudget } from '../src/session/session.js';

export const codec = new FrameCodec({ webSocketHeader: true });
export const replies = new Replies(codec);

/** A WebSocket that records frames and closes instead of sending them anywhere. */
export class FakeSocket {
  readyState = 1;
  bufferedAmount = 0;
  readonly sent: Uint8Array[] = [];
  closed: { code: number; reason: string } | undefined;
  terminated = false;
  pings = 0;

  send(bytes: Uint8Array): void {
    this.sent.push(bytes);
  }

  close(code: number, reason = ''): void {
    this.closed ??= { code, reason };
    this.readyState = 3;
  }

  terminate(): void {
    this.terminated = true;
    this.readyState = 3;
  }

  ping(): void {
    this.pings++;
  }

  on(): this {
    return this;
  }

  /** Listeners of one event (`close`, run by `emitClose()`). */
  private readonly closeListeners: Array<() => void> = [];

  once(event: string, listener: () => void): this {
    if (event === 'close') this.closeListeners.push(listener);
    return this;
  }

  /** The connection is gone: its `close` listeners run. */
  emitClose(): void {
    for (const l of this.closeListeners.splice(0)) l();
  }

  /** Every frame written so far, decoded. */
  get frames(): Frame[] {
    return this.sent.map(b => codec.decode(b));
  }

  /** The frames written since the last call (and forgets them). */
  take(): Frame[] {
    const frames = this.frames;
    this.sent.length = 0;
    return frames;
  }
}

export function fakeSession(identity: ConnectionIdentity = OPEN_IDENTITY, budget?: SendBudget): Session & { socket: FakeSocket } {
  return new Session(new FakeSocket() as unknown as WebSocket, identity, budget) as Session & { socket: FakeSocket };
}

/** A node of this relay on a fake socket (not routed: `world.route(node)` puts it in). */
export function fakeNode(
  world: World,
  announced: Partial<Announcement> & { nodeId: string },
  identity?: ConnectionIdentity,
): LocalNode & { session: Session & { socket: FakeSocket } } {
  const session = fakeSession(identity);
  const node = new LocalNode(session, world, { service: null, patterns: [], events: [], queue: null, ...announced }, Date.now());
  return node as LocalNode & { session: Session & { socket: FakeSocket } };
}

/** A cluster of one that was never started: presence and forwarding go nowhere, `send` answers false. */
export function idleCluster(relayId = 'relay'): RelayCluster {
  return new RelayCluster({
    relayId,
    backplane: new InMemoryBackplane(),
    heartbeatIntervalMs: 1000,
    timeoutMs: 3000,
    reservationMs: 60_000,
  });
}

/** What `fn` threw (it must throw). */
export function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}
