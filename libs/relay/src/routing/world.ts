import { ProviderTable } from './provider-table.js';
import type { Routable } from './routable.js';
import { type EventRoutes, SubscriptionIndex } from './subscription-index.js';

/**
 * One tenant's routing state. Sessions of different tenants live in
 * different worlds, so routing, discovery, events and targeting cannot cross
 * tenants: the same pattern (or node id) in two tenants names two things.
 */
export class World {
  /** Node id → the node holding it, on this relay or another. */
  readonly nodes = new Map<string, Routable>();
  readonly providers = new ProviderTable();
  readonly subscriptions: SubscriptionIndex;
  /** Nodes of this relay that said HELLO, in routing or not (drained, moved off); the world lives while any is left. */
  members = 0;

  constructor(
    readonly tenant: string,
    /** The relay's event route cache (one of its own when not given). */
    routes?: EventRoutes,
  ) {
    this.subscriptions = new SubscriptionIndex(routes);
  }

  /** Puts a node into routing: it holds its node id, serves its patterns, gets its subscriptions. */
  route(node: Routable): void {
    this.nodes.set(node.nodeId, node);
    this.providers.add(node);
    this.subscriptions.add(node);
  }

  /** Takes a node out of routing (its node id only if it holds it). */
  unroute(node: Routable): void {
    if (this.nodes.get(node.nodeId) === node) this.nodes.delete(node.nodeId);
    this.providers.remove(node);
    this.subscriptions.remove(node);
  }

  /** Whether `node` holds its node id here (it is routed to). */
  routes(node: Routable): boolean {
    return this.nodes.get(node.nodeId) === node;
  }
}

/** Every tenant's world, made on first use and dropped once nothing is left in it. */
export class Worlds {
  private readonly worlds = new Map<string, World>();

  constructor(
    /** The event route cache every world shares (each world has one of its own when not given). */
    private readonly routes?: EventRoutes,
  ) {}

  get(tenant: string): World | undefined {
    return this.worlds.get(tenant);
  }

  ensure(tenant: string): World {
    let world = this.worlds.get(tenant);
    if (world === undefined) this.worlds.set(tenant, (world = new World(tenant, this.routes)));
    return world;
  }

  /** Drops a world without local members or remote nodes. */
  dropIfEmpty(world: World): void {
    if (world.members === 0 && world.nodes.size === 0 && this.worlds.get(world.tenant) === world) {
      this.worlds.delete(world.tenant);
      // Its cached routes (to nobody) leave the cache it shares with the other worlds.
      world.subscriptions.clearCache();
    }
  }

  values(): IterableIterator<World> {
    return this.worlds.values();
  }

  get size(): number {
    return this.worlds.size;
  }
}
