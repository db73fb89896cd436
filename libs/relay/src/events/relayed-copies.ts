import { RelayErrorCode } from '@wsrelay/protocol';
import { ClusterMessageType } from '../cluster/cluster-protocol.js';
import type { RelayCluster } from '../cluster/relay-cluster.js';
import type { RemoteRelay } from '../cluster/remote.js';
import { EventDrop, type RelayObserver } from '../observe/relay-observer.js';
import { LocalNode } from '../routing/local-node.js';
import type { World } from '../routing/world.js';
import { HANDLER_ERROR } from './event-frame.js';

/** How long this relay keeps a copy it made for another relay, should that relay never settle it. */
const RELAYED_CLEANUP_MS = 10 * 60_000;

/** A delivery another relay asked this one to make to one of its nodes. */
interface Relayed {
  readonly relay: RemoteRelay;
  /** The other relay's delivery id. */
  readonly did: number;
  readonly node: LocalNode;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Copies of handler-acked events that other relays drive, given to nodes of
 * this relay: each node's HANDLED (or its leaving) goes back to that relay.
 */
export class RelayedCopies {
  private readonly byId = new Map<number, Relayed>();
  private readonly byNode = new Map<LocalNode, Set<number>>();

  constructor(
    private readonly cluster: RelayCluster,
    /** A fresh delivery id, shared with the copies this relay drives. */
    private readonly nextId: () => number,
    private readonly onSettled: () => void,
    private readonly observer?: Pick<RelayObserver, 'eventDropped'>,
  ) {}

  get size(): number {
    return this.byId.size;
  }

  has(id: number): boolean {
    return this.byId.has(id);
  }

  /**
   * Copies another relay asks this one to hand to its nodes (`copies`: node
   * id, the other relay's delivery id, attempt). `bytesFor` without an
   * attempt makes a plain copy.
   */
  relay(
    relay: RemoteRelay,
    world: World | undefined,
    pattern: string,
    copies: ReadonlyArray<readonly [string, number, number]>,
    bytesFor: (id: number, attempt?: number) => Uint8Array,
  ): void {
    for (const [nodeId, did, attempt] of copies) {
      const node = world?.nodes.get(nodeId);
      if (!(node instanceof LocalNode) || !node.isOpen || !world!.subscriptions.subscribes(node, pattern)) {
        this.observer?.eventDropped(EventDrop.Unreachable, 1);
        this.answer(relay, did, RelayErrorCode.PROVIDER_DISCONNECTED, null);
        continue;
      }
      if (node.passive) {
        // A relay that does not know it is passive (an earlier version) took it for a member of a servers' queue
        // group: the copy goes back, to move to a real member; a plain subscriber gets a plain copy, settled at once.
        if (node.queue !== null) {
          this.answer(relay, did, RelayErrorCode.PROVIDER_DISCONNECTED, null);
          continue;
        }
        node.send(bytesFor(0));
        this.answer(relay, did, null, null);
        continue;
      }
      const id = this.nextId();
      const r: Relayed = { relay, did, node, timer: undefined };
      // Only a cleanup, long past any deadline the other relay keeps (it may be configured otherwise).
      r.timer = setTimeout(() => this.drop(id, r), RELAYED_CLEANUP_MS);
      this.byId.set(id, r);
      let mine = this.byNode.get(node);
      if (mine === undefined) this.byNode.set(node, (mine = new Set()));
      mine.add(id);
      node.ask(bytesFor(id, attempt));
    }
  }

  /** HANDLED from `node` for a relayed copy; false when `id` names none given to it. */
  handled(node: LocalNode, id: number, error: Uint8Array | null): boolean {
    const r = this.byId.get(id);
    if (r === undefined || r.node !== node) return false;
    this.drop(id, r);
    this.answer(r.relay, r.did, error === null ? null : HANDLER_ERROR, error);
    return true;
  }

  /** A node of this relay left: the relays driving its copies hear so. */
  nodeGone(node: LocalNode): void {
    for (const id of [...(this.byNode.get(node) ?? [])]) {
      const r = this.byId.get(id);
      if (r === undefined) continue;
      this.drop(id, r);
      this.answer(r.relay, r.did, RelayErrorCode.PROVIDER_DISCONNECTED, null);
    }
    this.byNode.delete(node);
  }

  /** Another relay is gone (or started over): copies it asked for need no answer. */
  relayGone(relay: RemoteRelay): void {
    for (const [id, r] of [...this.byId]) if (r.relay === relay) this.drop(id, r);
  }

  private answer(relay: RemoteRelay, did: number, code: string | null, error: Uint8Array | null): void {
    this.cluster.send(relay, { type: ClusterMessageType.Handled, did, code, error });
  }

  private drop(id: number, r: Relayed): void {
    clearTimeout(r.timer);
    this.byId.delete(id);
    this.byNode.get(r.node)?.delete(id);
    this.onSettled();
  }
}
