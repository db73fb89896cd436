/**
 * A node routing can pick: a session on this relay (LocalNode) or a node on
 * another relay of the cluster (RemoteNode), both as presence announced them.
 */
export interface Routable {
  readonly nodeId: string;
  readonly service: string | null;
  /** RPC patterns it serves (as announced), and the same as a set. */
  readonly patterns: readonly string[];
  readonly serves: ReadonlySet<string>;
  /** Event subscriptions, with wildcards. */
  readonly events: readonly string[];
  readonly queue: string | null;
  /** Still reachable (its socket open, or its relay not gone). */
  readonly isOpen: boolean;
  /** Backed up: it is passed over for new routing while another node can take it. */
  readonly slow: boolean;
  /**
   * A passive client (a browser): it may subscribe, but never answers, so it
   * gets plain copies only, and its queue groups are its own, apart from
   * servers' of the same name. Absent: a server.
   */
  readonly passive?: boolean;
}

/** The node `nodeId` among `nodes` if it serves `pattern`. */
export function target<T extends Routable>(nodes: ReadonlyMap<string, T>, nodeId: string, pattern: string): T | undefined {
  const node = nodes.get(nodeId);
  return node !== undefined && node.serves.has(pattern) ? node : undefined;
}
