import type { PendingWait } from '../session.js';
import { ProviderTable } from './provider-table.js';
import { SubscriptionIndex } from './subscription-index.js';

/** A node routing can pick: a session on this relay, or a node on another (`RemoteNode`). */
export interface Routable {
  readonly nodeId: string | undefined;
  readonly service: string | null;
  readonly patterns: string[];
  readonly serves: Set<string>;
  readonly events: string[];
  readonly queue: string | null;
  readonly isOpen: boolean;
  /** Backed up (not reading what it is sent): passed over for new routing where another node can take it. */
  readonly slow: boolean;
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
  /** Sessions (established or not) in this world. */
  sessions = 0;
  /** Nodes of other relays in this world; it is dropped when neither is left. */
  remoteNodes = 0;

  constructor(readonly tenant: string) {}
}
