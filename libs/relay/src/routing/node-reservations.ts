import { nodeKey } from '../cluster/remote.js';
import type { LocalNode } from './local-node.js';

/** Who holds (or recently held) a node id. */
interface Reservation {
  subject: string;
  /** Infinity while its holder is connected. */
  until: number;
  /** The local node it is held for (none for a node of another relay). */
  holder?: LocalNode;
}

/**
 * Node ids bound to token subjects: while a node holds its id, and for a
 * while after it left, no other subject may take the id over.
 */
export class NodeReservations {
  private readonly byKey = new Map<string, Reservation>();

  constructor(
    /** How long an id stays bound after its holder left, in ms. */
    private readonly reservationMs: number,
  ) {}

  get size(): number {
    return this.byKey.size;
  }

  /** The subject the id is bound to, if any (an expired reservation is dropped). */
  ownerOf(tenant: string, nodeId: string, now = Date.now()): string | undefined {
    const key = nodeKey(tenant, nodeId);
    const r = this.byKey.get(key);
    if (r === undefined) return undefined;
    if (r.until <= now) {
      this.byKey.delete(key);
      return undefined;
    }
    return r.subject;
  }

  /** Binds the id to `subject` while `holder` (or a node of another relay, without one) holds it. */
  hold(tenant: string, nodeId: string, subject: string, holder?: LocalNode): void {
    this.byKey.set(nodeKey(tenant, nodeId), { subject, until: Infinity, holder });
  }

  /** A local node left, lost its id or drained: its id stays bound for the reservation time (only its own reservation). */
  release(node: LocalNode, now = Date.now()): void {
    const r = this.byKey.get(nodeKey(node.world.tenant, node.nodeId));
    if (r !== undefined && r.until === Infinity && r.holder === node) {
      r.until = now + this.reservationMs;
      r.holder = undefined;
    }
  }

  /** A node of another relay left: its id stays bound as its relay says (0: not at all). */
  releaseRemote(tenant: string, nodeId: string, subject: string | null, reservedForMs: number, now = Date.now()): void {
    const key = nodeKey(tenant, nodeId);
    const r = this.byKey.get(key);
    if (r === undefined || r.until !== Infinity || r.subject !== subject) return;
    if (reservedForMs > 0) r.until = now + reservedForMs;
    else this.byKey.delete(key);
  }

  /** Drops what has expired. */
  sweep(now = Date.now()): void {
    for (const [key, r] of this.byKey) if (r.until <= now) this.byKey.delete(key);
  }
}
