import { RelayErrorCode, RelayErrorMessages, type RequestFrame } from '@wsrelay/protocol';
import { Budget, budgetRefusalMessage } from '../internal/budget.js';
import { MAX_TIMER_MS } from '../internal/timers.js';
import { outcomeOf } from '../observe/codes.js';
import { type RelayObserver, RequestOutcome } from '../observe/relay-observer.js';
import type { LocalNode } from '../routing/local-node.js';
import { target } from '../routing/routable.js';
import type { World } from '../routing/world.js';
import type { Replies } from '../session/replies.js';

/**
 * A WAIT the relay answers once a provider of the pattern is online, or (with
 * `request`) a request held in the relay's startup grace until one is.
 */
export interface PendingWait {
  readonly id: number;
  readonly node: LocalNode;
  readonly pattern: string;
  timer: NodeJS.Timeout | undefined;
  /** A held request: routed when a provider comes; `expiresAt` is its own deadline (epoch ms). */
  readonly request?: { readonly frame: RequestFrame; readonly expiresAt: number };
  /** What it keeps at the relay, as its relay-wide budget counts it. */
  readonly bytes: number;
}

/** What all connections' waits may keep at the relay together, and how long a WAIT may last. */
export interface WaitLimits {
  /** Pending WAITs (pattern and bookkeeping, estimated). */
  readonly waitBytes: Budget;
  /** Requests held in the startup grace (payload, pattern and bookkeeping). */
  readonly heldBytes: Budget;
  /** Longest a WAIT lasts, in ms; a longer timeout is cut to it. */
  readonly maxWaitTimeoutMs: number;
}

/** What one node's waits keep at the relay: its WAITs' and held requests' bytes as the budgets count them, and its held payload. */
interface Kept {
  wait: number;
  held: number;
  payload: number;
}

/** What one wait keeps besides its pattern and payload (the record, its timer, its places in the maps), estimated. */
export const WAIT_OVERHEAD_BYTES = 384;

/**
 * Calls waiting for a provider: WAIT frames, and requests held in the
 * startup grace. Held payloads count against `maxHeldBytes` per connection,
 * and what all of them keep against the relay-wide budgets (`limits`), of
 * which one connection may keep at most its share (`Budget.perConnection`).
 */
export class Waits {
  private readonly byNode = new Map<LocalNode, Map<number, PendingWait>>();
  /** Per tenant, per pattern. */
  private readonly byPattern = new Map<string, Map<string, Set<PendingWait>>>();
  private readonly kept = new Map<LocalNode, Kept>();
  private held = 0;
  private pending = 0;

  constructor(
    private readonly replies: Replies,
    private readonly maxHeldBytes: number,
    private readonly limits: WaitLimits = {
      waitBytes: new Budget(Infinity),
      heldBytes: new Budget(Infinity),
      maxWaitTimeoutMs: MAX_TIMER_MS,
    },
    /** Hears how held requests end (those that fail here, never routed). */
    private readonly observer?: Pick<RelayObserver, 'requestFailed'>,
  ) {}

  has(node: LocalNode, id: number): boolean {
    return this.byNode.get(node)?.has(id) === true;
  }

  /** WAITs and held requests, of every node. */
  get size(): number {
    return this.pending;
  }

  /** WAITs and held requests of a node. */
  count(node: LocalNode): number {
    return this.byNode.get(node)?.size ?? 0;
  }

  /**
   * WAIT: answered at once with how many providers are online, or once one is
   * (TIMEOUT after `timeoutMs`, cut to `maxWaitTimeoutMs`). RATE_LIMITED
   * when the node's pending WAITs keep their share of the budget, or all of
   * them keep all of it.
   */
  wait(node: LocalNode, id: number, pattern: string, timeoutMs: number): void {
    const online = node.world.providers.count(pattern);
    if (online > 0) {
      this.replies.ack(node, id, online);
      return;
    }
    const budget = this.limits.waitBytes;
    const bytes = WAIT_OVERHEAD_BYTES + pattern.length;
    const refusal = budget.takeFor(this.kept.get(node)?.wait ?? 0, bytes);
    if (refusal !== undefined) {
      this.replies.error(node, id, RelayErrorCode.RATE_LIMITED, budgetRefusalMessage(refusal, budget, 'pending WAITs', 'waitBytes'));
      return;
    }
    this.keep(node).wait += bytes;
    const ms = Math.min(timeoutMs, this.limits.maxWaitTimeoutMs);
    this.add({ id, node, pattern, timer: undefined, bytes }, ms, RelayErrorCode.TIMEOUT, () =>
      ms < timeoutMs ? RelayErrorMessages.waitCapped(pattern, ms) : RelayErrorMessages.waitTimeout(pattern, timeoutMs),
    );
  }

  /**
   * Holds a request nothing serves yet until a provider comes, the grace ends
   * (`graceEndsAt`) or its own deadline (`expiresAt`) passes: then MICROSERVICE_OFFLINE.
   */
  hold(node: LocalNode, frame: RequestFrame, expiresAt: number, graceEndsAt: number): void {
    const bytes = frame.payload.byteLength;
    const mine = this.kept.get(node);
    if ((mine?.payload ?? 0) + bytes > this.maxHeldBytes) {
      this.observer?.requestFailed(RequestOutcome.RateLimited);
      this.replies.error(node, frame.id, RelayErrorCode.RATE_LIMITED, RelayErrorMessages.tooMuchHeld(this.maxHeldBytes));
      return;
    }
    const budget = this.limits.heldBytes;
    const kept = WAIT_OVERHEAD_BYTES + frame.pattern.length + bytes;
    const refusal = budget.takeFor(mine?.held ?? 0, kept);
    if (refusal !== undefined) {
      const message = budgetRefusalMessage(refusal, budget, 'calls held in its startup grace', 'heldBytes');
      this.observer?.requestFailed(RequestOutcome.RateLimited);
      this.replies.error(node, frame.id, RelayErrorCode.RATE_LIMITED, message);
      return;
    }
    const k = this.keep(node);
    k.held += kept;
    k.payload += bytes;
    this.held++;
    const wait: PendingWait = { id: frame.id, node, pattern: frame.pattern, timer: undefined, request: { frame, expiresAt }, bytes: kept };
    this.add(wait, Math.min(graceEndsAt, expiresAt) - Date.now(), RelayErrorCode.MICROSERVICE_OFFLINE, () =>
      RelayErrorMessages.microserviceOffline(frame.pattern, frame.peer),
    );
  }

  /** CANCEL of a WAIT or a held request: it goes, unanswered. False when the node has none with that id. */
  cancel(node: LocalNode, id: number): boolean {
    const wait = this.byNode.get(node)?.get(id);
    if (wait === undefined) return false;
    this.remove(wait);
    this.ended(wait, RequestOutcome.Cancelled);
    return true;
  }

  /**
   * Providers of `pattern` came online in `world`: in the order they came,
   * WAITs are answered with how many, and the held requests they can serve
   * are taken out of the books and handed to `route` (a request for another
   * node waits on). Returns how many were let go.
   */
  release(world: World, pattern: string, route: (held: PendingWait) => void): number {
    const set = this.byPattern.get(world.tenant)?.get(pattern);
    if (set === undefined) return 0;
    const online = world.providers.count(pattern);
    let released = 0;
    for (const wait of [...set]) {
      const held = wait.request;
      if (held !== undefined && held.frame.peer !== null && target(world.nodes, held.frame.peer, pattern) === undefined) continue;
      this.remove(wait);
      released++;
      if (held === undefined) this.replies.ack(wait.node, wait.id, online);
      else route(wait);
    }
    return released;
  }

  /** Every held request fails with `code` (the relay's drain: no provider will say HELLO here any more). */
  failHeld(code: RelayErrorCode, message: string): void {
    for (const waits of [...this.byNode.values()]) {
      for (const wait of [...waits.values()]) {
        if (wait.request === undefined) continue;
        this.remove(wait);
        this.ended(wait, outcomeOf(code));
        this.replies.error(wait.node, wait.id, code, message);
      }
    }
  }

  /** A node is gone: its waits go, unanswered. */
  forget(node: LocalNode): void {
    for (const wait of [...(this.byNode.get(node)?.values() ?? [])]) {
      this.remove(wait);
      this.ended(wait, RequestOutcome.CallerGone);
    }
    this.byNode.delete(node);
    this.kept.delete(node);
  }

  /** Requests held in the startup grace, and patterns waited for (for diagnostics). */
  get counts(): { waits: number; held: number; patterns: number } {
    let waits = 0;
    for (const m of this.byNode.values()) waits += m.size;
    let patterns = 0;
    for (const m of this.byPattern.values()) patterns += m.size;
    return { waits: waits - this.held, held: this.held, patterns };
  }

  /** What `node`'s waits keep (a record made on first use, dropped when the node is forgotten). */
  private keep(node: LocalNode): Kept {
    let k = this.kept.get(node);
    if (k === undefined) this.kept.set(node, (k = { wait: 0, held: 0, payload: 0 }));
    return k;
  }

  /** Books a wait on its node and its pattern; at `ms` it ends with an error. */
  private add(wait: PendingWait, ms: number, code: RelayErrorCode, message: () => string): void {
    wait.timer = setTimeout(() => {
      this.remove(wait);
      this.ended(wait, outcomeOf(code));
      this.replies.error(wait.node, wait.id, code, message());
    }, ms);
    let mine = this.byNode.get(wait.node);
    if (mine === undefined) this.byNode.set(wait.node, (mine = new Map<number, PendingWait>()));
    mine.set(wait.id, wait);
    this.pending++;
    const tenant = wait.node.world.tenant;
    let patterns = this.byPattern.get(tenant);
    if (patterns === undefined) this.byPattern.set(tenant, (patterns = new Map<string, Set<PendingWait>>()));
    let set = patterns.get(wait.pattern);
    if (set === undefined) patterns.set(wait.pattern, (set = new Set()));
    set.add(wait);
  }

  /** A held request ended here, never routed (a WAIT is not a request). */
  private ended(wait: PendingWait, outcome: RequestOutcome): void {
    if (wait.request !== undefined) this.observer?.requestFailed(outcome);
  }

  private remove(wait: PendingWait): void {
    clearTimeout(wait.timer);
    const mine = this.byNode.get(wait.node);
    if (mine?.get(wait.id) === wait) {
      mine.delete(wait.id);
      this.pending--;
      const k = this.keep(wait.node);
      if (wait.request !== undefined) {
        this.held--;
        k.held -= wait.bytes;
        k.payload -= wait.request.frame.payload.byteLength;
        this.limits.heldBytes.give(wait.bytes);
      } else {
        k.wait -= wait.bytes;
        this.limits.waitBytes.give(wait.bytes);
      }
    }
    const tenant = wait.node.world.tenant;
    const patterns = this.byPattern.get(tenant);
    const set = patterns?.get(wait.pattern);
    set?.delete(wait);
    if (set?.size === 0) patterns!.delete(wait.pattern);
    if (patterns?.size === 0) this.byPattern.delete(tenant);
  }
}
