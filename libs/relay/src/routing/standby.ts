import type { LocalNode } from './local-node.js';
import { ProviderTable } from './provider-table.js';
import { target } from './routable.js';

/**
 * Providers the relay's shutdown drain moved off routing while they are
 * still connected: a request that crossed the GOAWAY (sent before its caller
 * read it) goes to one of them, in turn, rather than failing.
 */
export class Standby {
  private readonly nodes = new Map<string, LocalNode>();
  private readonly providers = new ProviderTable<LocalNode>();

  add(node: LocalNode): void {
    this.nodes.set(node.nodeId, node);
    this.providers.add(node);
  }

  /** Whether it was there (remove it before its patterns change, and add it back after). */
  remove(node: LocalNode): boolean {
    if (this.nodes.get(node.nodeId) !== node) return false;
    this.nodes.delete(node.nodeId);
    this.providers.remove(node);
    return true;
  }

  get size(): number {
    return this.nodes.size;
  }

  /** One that serves `pattern` (`peer`: that node only) and is still open, in turn. */
  pick(pattern: string, peer: string | null): LocalNode | undefined {
    if (this.nodes.size === 0) return undefined;
    if (peer !== null) {
      const node = target(this.nodes, peer, pattern);
      return node?.isOpen ? node : undefined;
    }
    // Past one that is closing (its close event not in yet) to the next.
    for (let i = this.providers.count(pattern); i > 0; i--) {
      const node = this.providers.pick(pattern) as LocalNode;
      if (node.isOpen) return node;
    }
    return undefined;
  }
}
