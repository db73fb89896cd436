import type { ResolvedRelayOptions } from '../interfaces/relay-options.interface.js';
import { Budget, type BudgetStatus } from '../internal/budget.js';
import { RouteCache } from '../routing/route-cache.js';
import type { EventRoutes } from '../routing/subscription-index.js';
import { UnsentBudget } from '../session/unsent-budget.js';

/** Each relay-wide budget: bytes kept of its kind now, its limit, and what was refused for want of room. */
export interface RelayBudgetsStatus {
  /** Pending WAITs (estimated); refused: WAITs answered RATE_LIMITED. */
  waitBytes: BudgetStatus;
  /** Requests held in the startup grace; refused: requests answered RATE_LIMITED. */
  heldBytes: BudgetStatus;
  /** Payloads of handler-acked events kept for redelivery; refused: events answered RATE_LIMITED. */
  retainedBytes: BudgetStatus;
  /** Written to connections and not yet sent; refused: connections closed (4507) to keep under it. */
  unsentBytes: BudgetStatus;
  /** The event route cache (estimated); refused: routes evicted or too big to cache. */
  routeCacheBytes: BudgetStatus;
}

/**
 * What the relay keeps for all its connections together: one budget per
 * kind, each handed to the part that keeps it (waits, held calls, retained
 * event payloads, unsent bytes, the route cache), read together for `/status`.
 */
export class RelayBudgets {
  readonly waitBytes: Budget;
  readonly heldBytes: Budget;
  readonly retainedBytes: Budget;
  readonly unsentBytes: Budget;
  readonly routeCacheBytes: Budget;
  /** The sessions' watch: closes those that stopped reading when the relay is over its unsent budget. */
  readonly unsent: UnsentBudget;
  /** The event route cache every tenant's subscriptions share. */
  readonly routes: EventRoutes;

  constructor(limits: ResolvedRelayOptions['budgets']) {
    this.waitBytes = new Budget(limits.waitBytes);
    this.heldBytes = new Budget(limits.heldBytes);
    this.retainedBytes = new Budget(limits.retainedBytes);
    this.unsentBytes = new Budget(limits.unsentBytes);
    this.routeCacheBytes = new Budget(limits.routeCacheBytes);
    this.unsent = new UnsentBudget(this.unsentBytes);
    this.routes = new RouteCache(this.routeCacheBytes);
  }

  status(): RelayBudgetsStatus {
    return {
      waitBytes: this.waitBytes.status(),
      heldBytes: this.heldBytes.status(),
      retainedBytes: this.retainedBytes.status(),
      unsentBytes: this.unsentBytes.status(),
      routeCacheBytes: this.routeCacheBytes.status(),
    };
  }
}
