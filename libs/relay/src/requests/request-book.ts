import { RelayTracing, type RouteSpan } from '../observe/relay-tracing.js';
import type { RemoteNode, RemoteRelay } from '../cluster/remote.js';
import { IdSequence } from '../internal/id-sequence.js';
import type { LocalNode } from '../routing/local-node.js';

/**
 * One end of a request as the books know it: a local node, or another relay
 * (the caller's relay that forwarded it, or the relay of its provider).
 */
export type Party = LocalNode | RemoteRelay;
/** Who serves: a local node, or a node on another relay (reached through its relay). */
export type Provider = LocalNode | RemoteNode;

/**
 * A request routed through the relay, from its caller to its provider. Either
 * end may be on another relay: a caller there is its RemoteRelay (which
 * forwarded it), a provider there is a RemoteNode.
 */
export interface PendingRequest {
  /** This relay's id for the delivery to the provider (the forward id when the provider is remote). */
  readonly rid: number;
  /** The id the caller chose (the caller's relay's forward id when the caller is remote). */
  readonly callerRequestId: number;
  readonly caller: Party;
  readonly provider: Provider;
  /** `provider` itself, or its relay. */
  readonly party: Party;
  readonly pattern: string;
  readonly timeoutMs: number;
  /** When it was booked, that is routed (`performance.now()`): how long it took is measured from here. */
  readonly routedAt: number;
  timer: NodeJS.Timeout | undefined;
  /**
   * A flow-controlled request to a provider of this relay: how many more
   * RESPONSEs with a value its provider may send (the window, plus what the
   * caller granted since, less what came). -1: not flow-controlled here.
   */
  credit: number;
  /** Its span at this relay, when traced (see RelayTracing). */
  span: RouteSpan | undefined;
}

/** The largest id of a delivery to a provider. */
export const MAX_RID = 0xffff_ffff;

/**
 * The requests in flight, booked on both ends: by caller (under the id the
 * caller chose) and by provider party (under the id this relay gave the
 * delivery). Each party's books stay until the party is forgotten, so that
 * sequential calls allocate no map each.
 */
export class RequestBook {
  private readonly byCaller = new Map<Party, Map<number, PendingRequest>>();
  private readonly byParty = new Map<Party, Map<number, PendingRequest>>();
  private total = 0;
  private onExpire: (pending: PendingRequest) => void = () => undefined;
  /** A request's timer: one function for all of them (no closure per request). */
  private readonly expire = (pending: PendingRequest): void => {
    pending.timer = undefined;
    this.onExpire(pending);
  };

  constructor(
    /** Called whenever a request settles (the relay's shutdown drain waits for none to be left). */
    private readonly onSettled: () => void = () => undefined,
    /** Where delivery ids come from. */
    private readonly rids = new IdSequence(MAX_RID),
  ) {}

  /** What a request's deadline does (the book itself settles nothing then): set once, by whoever routes requests. */
  expireWith(onExpire: (pending: PendingRequest) => void): void {
    this.onExpire = onExpire;
  }

  /** Requests in flight, each counted once. */
  get size(): number {
    return this.total;
  }

  /**
   * Books a request on both its ends under a fresh id for the delivery; the
   * expiry (see expireWith) runs at `timerMs` unless it settles first.
   */
  book(
    caller: Party,
    callerRequestId: number,
    provider: Provider,
    party: Party,
    pattern: string,
    timeoutMs: number,
    timerMs: number,
  ): PendingRequest {
    const delivered = books(this.byParty, party);
    const rid = this.rids.next(delivered);
    const routedAt = performance.now();
    const pending: PendingRequest = {
      rid,
      callerRequestId,
      caller,
      provider,
      party,
      pattern,
      timeoutMs,
      routedAt,
      timer: undefined,
      credit: -1,
      span: undefined,
    };
    books(this.byCaller, caller).set(callerRequestId, pending);
    delivered.set(rid, pending);
    this.total++;
    pending.timer = setTimeout(this.expire, timerMs, pending);
    return pending;
  }

  /** Removes a request from both ends' books (its span ends, failed with `failure` if given); false when it had settled already. */
  settle(pending: PendingRequest, failure?: string): boolean {
    const asked = this.byCaller.get(pending.caller);
    if (asked?.get(pending.callerRequestId) !== pending) return false;
    if (pending.span !== undefined) RelayTracing.ended(pending.span, failure);
    clearTimeout(pending.timer);
    asked.delete(pending.callerRequestId);
    this.byParty.get(pending.party)?.delete(pending.rid);
    this.total--;
    this.onSettled();
    return true;
  }

  /** The request `caller` made under its own id `id`. */
  asked(caller: Party, id: number): PendingRequest | undefined {
    return this.byCaller.get(caller)?.get(id);
  }

  /** The request delivered to `party` under this relay's id `rid`. */
  delivered(party: Party, rid: number): PendingRequest | undefined {
    return this.byParty.get(party)?.get(rid);
  }

  /** Requests `caller` has in flight. */
  askedCount(caller: Party): number {
    return this.byCaller.get(caller)?.size ?? 0;
  }

  /** Requests in flight at `party`. */
  deliveredCount(party: Party): number {
    return this.byParty.get(party)?.size ?? 0;
  }

  /** A snapshot of what `caller` has in flight. */
  askedBy(caller: Party): PendingRequest[] {
    return [...(this.byCaller.get(caller)?.values() ?? [])];
  }

  /** A snapshot of what is in flight at `party`. */
  deliveredTo(party: Party): PendingRequest[] {
    return [...(this.byParty.get(party)?.values() ?? [])];
  }

  /** Forgets a party's (empty) books once it is gone. */
  forget(party: Party): void {
    if (this.byCaller.get(party)?.size === 0) this.byCaller.delete(party);
    if (this.byParty.get(party)?.size === 0) this.byParty.delete(party);
  }

  /** Parties with books (kept while they live; for diagnostics). */
  get parties(): number {
    return new Set([...this.byCaller.keys(), ...this.byParty.keys()]).size;
  }
}

function books<K>(all: Map<K, Map<number, PendingRequest>>, key: K): Map<number, PendingRequest> {
  let m = all.get(key);
  if (m === undefined) all.set(key, (m = new Map<number, PendingRequest>()));
  return m;
}
