import { randomUUID } from 'node:crypto';
import type { RelayModuleOptions, ResolvedRelayOptions } from './interfaces/relay-options.interface.js';

export const DEFAULT_RELAY_PATH = '/relay';
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;
export const DEFAULT_RELAY_HEARTBEAT_INTERVAL_MS = 10_000;
export const DEFAULT_RELAY_HANDSHAKE_TIMEOUT_MS = 5_000;
export const DEFAULT_MAX_BAD_FRAMES = 100;

/** Injection token of the resolved relay options. */
export const RELAY_OPTIONS = Symbol('wsrelay:relay_options');

/** Gateway option key carrying relay settings to `RelayWsAdapter` (stripped before `ws` sees them). */
export const RELAY_ADAPTER_SETTINGS = 'wsrelay';

/** Set on every `ws` server `RelayWsAdapter` creates, so the gateway can tell it is in place. */
export const RELAY_ADAPTER_MARK = Symbol.for('wsrelay:adapter');

function positiveInt(name: string, v: number | undefined, min = 1): void {
  if (v !== undefined && (!Number.isInteger(v) || v < min)) {
    throw new TypeError(`RelayModule: ${name} must be an integer of at least ${min}, got ${String(v)}`);
  }
}

/** Applies defaults once and rejects bad values, naming the option. */
export function resolveRelayOptions(o: RelayModuleOptions = {}): ResolvedRelayOptions {
  positiveInt('maxPayloadBytes', o.maxPayloadBytes, 64);
  positiveInt('heartbeatIntervalMs', o.heartbeatIntervalMs, 10);
  positiveInt('handshakeTimeoutMs', o.handshakeTimeoutMs);
  positiveInt('maxBadFrames', o.maxBadFrames);
  const path = o.path ?? DEFAULT_RELAY_PATH;
  if (!path.startsWith('/')) throw new TypeError(`RelayModule: path must start with "/", got "${path}"`);
  return {
    path,
    maxPayloadBytes: o.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
    heartbeatIntervalMs: o.heartbeatIntervalMs ?? DEFAULT_RELAY_HEARTBEAT_INTERVAL_MS,
    handshakeTimeoutMs: o.handshakeTimeoutMs ?? DEFAULT_RELAY_HANDSHAKE_TIMEOUT_MS,
    maxBadFrames: o.maxBadFrames ?? DEFAULT_MAX_BAD_FRAMES,
    relayId: o.relayId ?? randomUUID(),
  };
}
