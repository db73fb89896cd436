import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import type { WsRelayUrlStatus } from '../connection/url-status.js';

/** What the indicator looks at: a `WsRelayClient` or a `WsRelayStrategy`. */
export interface WsRelayNode {
  readonly nodeId: string;
  relayStatus(): Record<string, WsRelayUrlStatus>;
}

/** An indicator's answer under its key: `up` or `down`, each relay URL's state, and why when down. */
export type WsRelayHealthResult<Key extends string> = Record<
  Key,
  { status: 'up' | 'down'; nodeId: string; relays: Record<string, WsRelayUrlStatus>; message?: string }
>;

/**
 * The part of terminus's `HealthIndicatorService` used here, described so
 * that this package's types do not need terminus (an optional peer dependency).
 */
export interface WsRelayHealthSessions {
  check(key: string): { up(data: object): unknown; down(data: object): unknown };
}

/**
 * A @nestjs/terminus health indicator: up while a client or a strategy is
 * connected to a relay (welcomed by it: a strategy is then announced and
 * served), down otherwise, with each relay URL's state. Provide it in a
 * module that imports `TerminusModule`.
 */
@Injectable()
export class WsRelayHealthIndicator {
  constructor(@Inject(HealthIndicatorService) private readonly health: WsRelayHealthSessions) {}

  /** `key`'s result: up when `node` is connected to at least one relay. */
  isConnected<const Key extends string>(key: Key, node: WsRelayNode): WsRelayHealthResult<Key> {
    const relays = node.relayStatus();
    const session = this.health.check(key);
    const data = { nodeId: node.nodeId, relays };
    if (Object.values(relays).includes('connected')) return session.up(data) as WsRelayHealthResult<Key>;
    return session.down({ message: notConnected(relays), ...data }) as WsRelayHealthResult<Key>;
  }
}

function notConnected(relays: Record<string, WsRelayUrlStatus>): string {
  const states = Object.entries(relays).map(([url, status]) => `${url} ${status}`);
  return `Not connected to a relay (${states.join(', ')})`;
}
