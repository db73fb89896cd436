import type { Backplane, BackplaneListener } from './backplane.js';

/** Relays in one process that share a hub form a cluster; each relay without one gets a private hub. */
export class InMemoryHub {
  readonly members = new Map<string, BackplaneListener>();
}

/**
 * The default backplane: in-process delivery through an `InMemoryHub`. With
 * its own hub a relay is a cluster of one (nothing to install); relays given
 * the same hub form a cluster inside one process (used by fast tests).
 * Delivery is asynchronous, as over a network, and in order.
 */
export class InMemoryBackplane implements Backplane {
  readonly description = 'in-memory';
  private self: string | undefined;

  constructor(private readonly hub = new InMemoryHub()) {}

  start(self: string, listener: BackplaneListener): Promise<void> {
    this.self = self;
    this.hub.members.set(self, listener);
    return Promise.resolve();
  }

  publish(message: Uint8Array): void {
    for (const listener of this.hub.members.values()) deliver(listener, message);
  }

  send(relay: string, message: Uint8Array): void {
    const listener = this.hub.members.get(relay);
    if (listener !== undefined) deliver(listener, message);
  }

  close(): Promise<void> {
    if (this.self !== undefined) this.hub.members.delete(this.self);
    return Promise.resolve();
  }
}

function deliver(listener: BackplaneListener, message: Uint8Array): void {
  // A copy, as a network would make: no relay may share a buffer with another.
  const copy = message.slice();
  setImmediate(() => listener.message(copy));
}
