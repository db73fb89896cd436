import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { fakeNode } from '../../spec-support/fakes.js';
import { NodeReservations } from './node-reservations.js';
import { ProviderTable } from './provider-table.js';
import type { Routable } from './routable.js';
import { Standby } from './standby.js';
import { World, Worlds } from './world.js';

/** A routable node without a session: `slow` can be flipped by the test. */
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function routable(nodeId: string, patterns: string[] = [], events: string[] = [], queue: string | null = null): Mutable<Routable> {
  return { nodeId, service: null, patterns, serves: new Set(patterns), events, queue, isOpen: true, slow: false };
}

function picks<T extends Routable>(table: ProviderTable<T>, pattern: string, n: number): Array<string | undefined> {
  return Array.from({ length: n }, () => table.pick(pattern)?.nodeId);
}

describe('NodeReservations', () => {
  const T0 = 1_000_000;
  const MS = 60_000;
  let world: World;
  let reservations: NodeReservations;

  beforeEach(() => {
    world = new World('acme');
    reservations = new NodeReservations(MS);
  });

  it('binds a node id to a subject per tenant while its holder holds it', () => {
    const node = fakeNode(world, { nodeId: 'n1' });
    expect(reservations.ownerOf('acme', 'n1', T0)).toBeUndefined();
    reservations.hold('acme', 'n1', 'alice', node);
    expect(reservations.ownerOf('acme', 'n1', T0)).toBe('alice');
    // Held: it does not run out however long the holder stays.
    expect(reservations.ownerOf('acme', 'n1', Number.MAX_SAFE_INTEGER)).toBe('alice');
    expect(reservations.ownerOf('other', 'n1', T0)).toBeUndefined();
    expect(reservations.ownerOf('acme', 'n2', T0)).toBeUndefined();
    expect(reservations.size).toBe(1);
  });

  it('keeps a released id bound for reservationMs, then drops it when asked', () => {
    const node = fakeNode(world, { nodeId: 'n1' });
    reservations.hold('acme', 'n1', 'alice', node);
    reservations.release(node, T0);
    expect(reservations.ownerOf('acme', 'n1', T0 + MS - 1)).toBe('alice');
    expect(reservations.size).toBe(1);
    expect(reservations.ownerOf('acme', 'n1', T0 + MS)).toBeUndefined();
    expect(reservations.size).toBe(0);
  });

  it('does not extend a reservation released twice', () => {
    const node = fakeNode(world, { nodeId: 'n1' });
    reservations.hold('acme', 'n1', 'alice', node);
    reservations.release(node, T0);
    reservations.release(node, T0 + 30_000);
    expect(reservations.ownerOf('acme', 'n1', T0 + MS)).toBeUndefined();
  });

  it('releases only the reservation its own holder made', () => {
    const before = fakeNode(world, { nodeId: 'n1' });
    const after = fakeNode(world, { nodeId: 'n1' });
    reservations.hold('acme', 'n1', 'alice', after);
    reservations.release(before, T0);
    expect(reservations.ownerOf('acme', 'n1', T0 + MS * 10)).toBe('alice');
    // A hold for a node of another relay (no holder) is not a local node's to release.
    reservations.hold('acme', 'n1', 'bob');
    reservations.release(after, T0);
    expect(reservations.ownerOf('acme', 'n1', T0 + MS * 10)).toBe('bob');
  });

  it('binds the id for good again when it is held after a release', () => {
    const node = fakeNode(world, { nodeId: 'n1' });
    reservations.hold('acme', 'n1', 'alice', node);
    reservations.release(node, T0);
    reservations.hold('acme', 'n1', 'alice', node);
    expect(reservations.ownerOf('acme', 'n1', T0 + MS * 10)).toBe('alice');
  });

  it('keeps a remote node id as its relay says: for reservedForMs, or not at all', () => {
    reservations.hold('acme', 'r1', 'alice');
    reservations.releaseRemote('acme', 'r1', 'alice', 5000, T0);
    expect(reservations.ownerOf('acme', 'r1', T0 + 4999)).toBe('alice');
    expect(reservations.ownerOf('acme', 'r1', T0 + 5000)).toBeUndefined();

    reservations.hold('acme', 'r2', 'alice');
    reservations.releaseRemote('acme', 'r2', 'alice', 0, T0);
    expect(reservations.ownerOf('acme', 'r2', T0)).toBeUndefined();
    expect(reservations.size).toBe(0);
  });

  it('ignores a remote release for another subject or of a reservation already running out', () => {
    reservations.hold('acme', 'r1', 'alice');
    reservations.releaseRemote('acme', 'r1', 'bob', 0, T0);
    reservations.releaseRemote('acme', 'r1', null, 0, T0);
    expect(reservations.ownerOf('acme', 'r1', T0 + MS * 10)).toBe('alice');

    const node = fakeNode(world, { nodeId: 'n1' });
    reservations.hold('acme', 'n1', 'alice', node);
    reservations.release(node, T0);
    reservations.releaseRemote('acme', 'n1', 'alice', 0, T0);
    expect(reservations.ownerOf('acme', 'n1', T0 + 1)).toBe('alice');
    reservations.releaseRemote('acme', 'missing', 'alice', 1000, T0);
    expect(reservations.size).toBe(2);
  });

  it('sweeps what has run out and keeps the rest', () => {
    const [a, b] = [fakeNode(world, { nodeId: 'a' }), fakeNode(world, { nodeId: 'b' })];
    reservations.hold('acme', 'a', 'alice', a);
    reservations.hold('acme', 'b', 'bob', b);
    reservations.hold('acme', 'c', 'carol', fakeNode(world, { nodeId: 'c' }));
    reservations.release(a, T0);
    reservations.release(b, T0 + 1000);
    reservations.sweep(T0 + MS);
    expect(reservations.size).toBe(2);
    expect(reservations.ownerOf('acme', 'b', T0 + MS)).toBe('bob');
    expect(reservations.ownerOf('acme', 'c', T0 + MS)).toBe('carol');
  });

  describe('with the clock', () => {
    beforeEach(() => {
      jest.useFakeTimers({ now: T0 });
    });
    afterEach(() => {
      jest.useRealTimers();
    });

    it('uses Date.now() when no time is given', () => {
      const node = fakeNode(world, { nodeId: 'n1' });
      reservations.hold('acme', 'n1', 'alice', node);
      reservations.release(node);
      jest.advanceTimersByTime(MS - 1);
      expect(reservations.ownerOf('acme', 'n1')).toBe('alice');
      jest.advanceTimersByTime(1);
      expect(reservations.ownerOf('acme', 'n1')).toBeUndefined();
    });
  });
});

describe('World', () => {
  it('routes a node: it holds its id, serves its patterns and gets its events', () => {
    const world = new World('acme');
    const node = routable('n1', ['orders.get'], ['orders.*']);
    world.route(node);
    expect(world.nodes.get('n1')).toBe(node);
    expect(world.routes(node)).toBe(true);
    expect(world.providers.pick('orders.get')).toBe(node);
    expect(world.subscriptions.recipients('orders.created')).toEqual([node]);

    world.unroute(node);
    expect(world.nodes.size).toBe(0);
    expect(world.routes(node)).toBe(false);
    expect(world.providers.pick('orders.get')).toBeUndefined();
    expect(world.subscriptions.recipients('orders.created')).toEqual([]);
  });

  it('routes only the node that holds the id, not another with the same id', () => {
    const world = new World('acme');
    const [a, b] = [routable('n1'), routable('n1')];
    world.route(a);
    expect(world.routes(b)).toBe(false);
  });
});

describe('Worlds', () => {
  it('makes a world per tenant on first use', () => {
    const worlds = new Worlds();
    expect(worlds.get('acme')).toBeUndefined();
    const acme = worlds.ensure('acme');
    expect(acme.tenant).toBe('acme');
    expect(worlds.ensure('acme')).toBe(acme);
    expect(worlds.get('acme')).toBe(acme);
    const other = worlds.ensure('other');
    expect(other).not.toBe(acme);
    expect(worlds.size).toBe(2);
    expect([...worlds.values()]).toEqual([acme, other]);
  });

  it('drops a world only once it has neither members nor routed nodes', () => {
    const worlds = new Worlds();
    const world = worlds.ensure('acme');
    world.members = 1;
    worlds.dropIfEmpty(world);
    expect(worlds.get('acme')).toBe(world);

    world.members = 0;
    const remote = routable('r1');
    world.route(remote);
    worlds.dropIfEmpty(world);
    expect(worlds.get('acme')).toBe(world);

    world.unroute(remote);
    worlds.dropIfEmpty(world);
    expect(worlds.get('acme')).toBeUndefined();
    expect(worlds.size).toBe(0);
  });

  it('does not drop the world made anew for the tenant when given a stale one', () => {
    const worlds = new Worlds();
    const stale = worlds.ensure('acme');
    worlds.dropIfEmpty(stale);
    const fresh = worlds.ensure('acme');
    fresh.members = 1;
    worlds.dropIfEmpty(stale);
    expect(worlds.get('acme')).toBe(fresh);
  });
});

describe('ProviderTable', () => {
  it('takes the providers of a pattern in turn', () => {
    const table = new ProviderTable();
    ['a', 'b', 'c'].forEach(id => table.add(routable(id, ['p'])));
    expect(picks(table, 'p', 7)).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'a']);
  });

  it('keeps patterns apart and counts providers', () => {
    const table = new ProviderTable();
    table.add(routable('a', ['p', 'q']));
    table.add(routable('b', ['q']));
    expect(table.count('p')).toBe(1);
    expect(table.count('q')).toBe(2);
    expect(table.count('r')).toBe(0);
    expect(table.patternCount).toBe(2);
    expect(picks(table, 'p', 3)).toEqual(['a', 'a', 'a']);
    expect(table.pick('r')).toBeUndefined();
  });

  it('forgets a removed provider and a pattern whose last provider left', () => {
    const table = new ProviderTable();
    const [a, b] = [routable('a', ['p', 'q']), routable('b', ['p'])];
    table.add(a);
    table.add(b);
    table.remove(a);
    expect(table.count('p')).toBe(1);
    expect(picks(table, 'p', 3)).toEqual(['b', 'b', 'b']);
    expect(table.pick('q')).toBeUndefined();
    expect(table.patternCount).toBe(1);
    table.remove(b);
    expect(table.patternCount).toBe(0);
    expect(table.pick('p')).toBeUndefined();
    // Removing what is not there is harmless.
    table.remove(b);
    expect(table.count('p')).toBe(0);
  });

  it('passes over a slow provider while another is not slow', () => {
    const table = new ProviderTable();
    const [a, b, c] = [routable('a', ['p']), routable('b', ['p']), routable('c', ['p'])];
    [a, b, c].forEach(n => table.add(n));
    a.slow = true;
    expect(picks(table, 'p', 4)).toEqual(['b', 'c', 'b', 'c']);
    a.slow = false;
    c.slow = true;
    expect(picks(table, 'p', 4)).toEqual(['a', 'b', 'a', 'b']);
    // Past several slow ones in a row to the one that is not.
    b.slow = true;
    expect(picks(table, 'p', 3)).toEqual(['a', 'a', 'a']);
    // Recovered, they all take turns again.
    [a, b, c].forEach(n => (n.slow = false));
    expect(picks(table, 'p', 3).sort()).toEqual(['a', 'b', 'c']);
  });

  it('still picks a slow provider when it is the only one', () => {
    const table = new ProviderTable();
    const a = routable('a', ['p']);
    a.slow = true;
    table.add(a);
    expect(picks(table, 'p', 2)).toEqual(['a', 'a']);
  });

  it('takes every provider in turn when all of them are slow, so no single one gets them all', () => {
    const table = new ProviderTable();
    const nodes = [routable('a', ['p']), routable('b', ['p']), routable('c', ['p'])];
    nodes.forEach(n => {
      n.slow = true;
      table.add(n);
    });
    expect(picks(table, 'p', 4)).toEqual(['a', 'b', 'c', 'a']);
  });
});

describe('Standby', () => {
  let world: World;
  let standby: Standby;

  beforeEach(() => {
    world = new World('acme');
    standby = new Standby();
  });

  it('picks nothing while empty', () => {
    expect(standby.size).toBe(0);
    expect(standby.pick('p', null)).toBeUndefined();
    expect(standby.pick('p', 'a')).toBeUndefined();
  });

  it('takes the providers of a pattern in turn', () => {
    const [a, b] = [fakeNode(world, { nodeId: 'a', patterns: ['p'] }), fakeNode(world, { nodeId: 'b', patterns: ['p', 'q'] })];
    standby.add(a);
    standby.add(b);
    expect(standby.size).toBe(2);
    expect([1, 2, 3, 4].map(() => standby.pick('p', null))).toEqual([a, b, a, b]);
    expect(standby.pick('q', null)).toBe(b);
    expect(standby.pick('other', null)).toBeUndefined();
  });

  it('passes over a provider whose socket is closing, and finds none when all are', () => {
    const [a, b] = [fakeNode(world, { nodeId: 'a', patterns: ['p'] }), fakeNode(world, { nodeId: 'b', patterns: ['p'] })];
    standby.add(a);
    standby.add(b);
    a.session.socket.close(1000);
    expect([1, 2, 3].map(() => standby.pick('p', null))).toEqual([b, b, b]);
    b.session.socket.close(1000);
    expect(standby.pick('p', null)).toBeUndefined();
  });

  it('picks a named peer only if it serves the pattern and is open', () => {
    const [a, b] = [fakeNode(world, { nodeId: 'a', patterns: ['p'] }), fakeNode(world, { nodeId: 'b', patterns: ['p'] })];
    standby.add(a);
    standby.add(b);
    expect([1, 2, 3].map(() => standby.pick('p', 'b'))).toEqual([b, b, b]);
    expect(standby.pick('q', 'b')).toBeUndefined();
    expect(standby.pick('p', 'c')).toBeUndefined();
    b.session.socket.close(1000);
    expect(standby.pick('p', 'b')).toBeUndefined();
  });

  it('removes only the node it holds under that id', () => {
    const a = fakeNode(world, { nodeId: 'a', patterns: ['p'] });
    const other = fakeNode(world, { nodeId: 'a', patterns: ['p'] });
    standby.add(a);
    expect(standby.remove(other)).toBe(false);
    expect(standby.size).toBe(1);
    expect(standby.pick('p', null)).toBe(a);
    expect(standby.remove(a)).toBe(true);
    expect(standby.remove(a)).toBe(false);
    expect(standby.size).toBe(0);
    expect(standby.pick('p', null)).toBeUndefined();
    expect(standby.pick('p', 'a')).toBeUndefined();
  });
});
