import type { RemoteNode } from '../cluster/remote.js';
import type { PendingWait, Session } from '../session.js';
import { ProviderTable } from './provider-table.js';
import { SubscriptionIndex } from './subscription-index.js';

/** A node routing can pick: a session on this relay, or a node on another. */
export type Routable = Session | RemoteNode;

/** The node `nodeId` among `nodes` if it serves `pattern`. */
export function target<T extends Routable>(nodes: ReadonlyMap<string, T>, nodeId: string, pattern: string): T | undefined {
  const node = nodes.get(nodeId);
  return node !== undefined && node.serves.has(pattern) ? node : undefined;
}

/**
 * Providers the relay's shutdown drain moved off routing while they are
 * still connected: a request that crossed the GOAWAY (sent before its caller
 * read it) goes to one of them, in turn, rather than failing.
 */
class Standby {
  private readonly nodes = new Map<string, Session>();
  private readonly providers = new ProviderTable();

  add(session: Session): void {
    this.nodes.set(session.nodeId as string, session);
    this.providers.add(session);
  }

  /** Whether it was there (remove it before its patterns change, and add it back after). */
  remove(session: Session): boolean {
    if (this.nodes.get(session.nodeId as string) !== session) return false;
    this.nodes.delete(session.nodeId as string);
    this.providers.remove(session);
    return true;
  }

  /** One that serves `pattern` (`peer`: that node only) and is still open, in turn. */
  pick(pattern: string, peer: string | null): Session | undefined {
    if (this.nodes.size === 0) return undefined;
    if (peer !== null) {
      const s = target(this.nodes, peer, pattern);
      return s?.isOpen ? s : undefined;
    }
    // Past one that is closing (its close event not in yet) to the next.
    for (let i = this.providers.count(pattern); i > 0; i--) {
      const s = this.providers.pick(pattern) as Session;
      if (s.isOpen) return s;
    }
    return undefined;
  }
}

/**
 * One tenant's routing state. Sessions of different tenants live in
 * different worlds, so routing, discovery, events and targeting cannot cross
 * tenants: the same pattern (or node id) in two tenants names two things.
 */
export class World {
  /** Node id → the session or remote node holding it. */
  readonly nodes = new Map<string, Routable>();
  readonly providers = new ProviderTable();
  readonly subscriptions = new SubscriptionIndex();
  readonly waits = new Map<string, Set<PendingWait>>();
  /** Only while the relay drains for shutdown. */
  readonly standby = new Standby();
  /** Sessions (established or not) in this world; it is dropped when none is left, nor any node of another relay. */
  sessions = 0;

  constructor(readonly tenant: string) {}
}
