import type { ClusterNode } from './cluster-protocol.js';

/** Another relay of the cluster, as this one knows it. */
export class RemoteRelay {
  /** Its nodes, by `tenant\0nodeId`. */
  readonly nodes = new Map<string, RemoteNode>();
  lastSeen = Date.now();
  relayId: string;
  /** Set once it is gone (timed out, said goodbye, or the backplane is down): nothing is sent to it. */
  gone = false;
  /** Its snapshot has arrived: this relay has all its nodes. */
  synced = false;
  /** Why it is not synced, when something went wrong: its snapshot was refused, or a transfer from it stalled (it was met again). */
  syncTrouble: string | undefined;

  constructor(
    /** The relay process's backplane id (a fresh one per start). */
    readonly instanceId: string,
    relayId?: string,
  ) {
    this.relayId = relayId ?? instanceId;
  }
}

/** A node connected to another relay: routed to like a local node, reached through the backplane. */
export class RemoteNode {
  serves: ReadonlySet<string>;

  constructor(
    readonly relay: RemoteRelay,
    public info: ClusterNode,
  ) {
    this.serves = new Set(info.patterns);
  }

  /** The same claim, announced again with other patterns or subscriptions (take it out of routing first). */
  update(info: ClusterNode): void {
    this.info = info;
    this.serves = new Set(info.patterns);
  }

  get nodeId(): string {
    return this.info.nodeId;
  }

  get service(): string | null {
    return this.info.service;
  }

  get patterns(): readonly string[] {
    return this.info.patterns;
  }

  get events(): readonly string[] {
    return this.info.events;
  }

  get queue(): string | null {
    return this.info.queue;
  }

  get isOpen(): boolean {
    return !this.relay.gone;
  }

  /** Its own relay watches its buffer. */
  get slow(): boolean {
    return false;
  }

  get passive(): boolean {
    return this.info.passive === true;
  }
}

export function nodeKey(tenant: string, nodeId: string): string {
  return `${tenant}\u0000${nodeId}`;
}

/** The same node, announced again unchanged. */
export function sameNode(a: ClusterNode, b: ClusterNode): boolean {
  return (
    a.since === b.since &&
    a.service === b.service &&
    a.queue === b.queue &&
    a.subject === b.subject &&
    (a.passive === true) === (b.passive === true) &&
    a.patterns.length === b.patterns.length &&
    a.patterns.every((p, i) => p === b.patterns[i]) &&
    a.events.length === b.events.length &&
    a.events.every((e, i) => e === b.events[i])
  );
}

/** Whether claim `a` to a node id beats claim `b`: the older wins, ties by relay instance id. */
export function claimBeats(a: { since: number }, aInstance: string, b: { since: number }, bInstance: string): boolean {
  return a.since < b.since || (a.since === b.since && aInstance < bInstance);
}
