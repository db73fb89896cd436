import type { PendingWait, Session } from '../session.js';
import { ProviderTable } from './provider-table.js';
import { SubscriptionIndex } from './subscription-index.js';

/**
 * One tenant's routing state. Sessions of different tenants live in
 * different worlds, so routing, discovery, events and targeting cannot cross
 * tenants: the same pattern (or node id) in two tenants names two things.
 */
export class World {
  readonly nodes = new Map<string, Session>();
  readonly providers = new ProviderTable();
  readonly subscriptions = new SubscriptionIndex();
  readonly waits = new Map<string, Set<PendingWait>>();
  /** Sessions (established or not) in this world; it is dropped when none is left. */
  sessions = 0;

  constructor(readonly tenant: string) {}
}
