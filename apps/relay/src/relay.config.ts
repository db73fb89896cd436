import type { RelayModuleOptions } from '@wsrelay/relay';

/** Where the deployable relay listens and how it routes, read from the environment. */
export interface RelayAppConfig {
  port: number;
  host: string;
  relay: RelayModuleOptions;
}

export const DEFAULT_RELAY_PORT = 8787;
export const DEFAULT_RELAY_HOST = '127.0.0.1';

function int(env: NodeJS.ProcessEnv, name: string, min: number): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    throw new TypeError(`${name} must be an integer of at least ${min}, got "${raw}"`);
  }
  return n;
}

/**
 * RELAY_PORT (8787), RELAY_HOST (127.0.0.1), RELAY_PATH (/relay),
 * RELAY_MAX_PAYLOAD_BYTES, RELAY_HEARTBEAT_INTERVAL_MS,
 * RELAY_HANDSHAKE_TIMEOUT_MS, RELAY_MAX_BAD_FRAMES, RELAY_ID.
 */
export function relayConfigFromEnv(env: NodeJS.ProcessEnv = process.env): RelayAppConfig {
  return {
    port: int(env, 'RELAY_PORT', 0) ?? DEFAULT_RELAY_PORT,
    host: env.RELAY_HOST || DEFAULT_RELAY_HOST,
    relay: {
      path: env.RELAY_PATH || undefined,
      maxPayloadBytes: int(env, 'RELAY_MAX_PAYLOAD_BYTES', 64),
      heartbeatIntervalMs: int(env, 'RELAY_HEARTBEAT_INTERVAL_MS', 10),
      handshakeTimeoutMs: int(env, 'RELAY_HANDSHAKE_TIMEOUT_MS', 1),
      maxBadFrames: int(env, 'RELAY_MAX_BAD_FRAMES', 1),
      relayId: env.RELAY_ID || undefined,
    },
  };
}
