export const DEFAULT_HEARTBEAT_INTERVAL_MS = 10_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5_000;
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_OFFLINE_QUEUE = 1000;
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_IN_FLIGHT = 10_000;
export const DEFAULT_MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
export const DEFAULT_RECONNECT_INITIAL_DELAY_MS = 100;
export const DEFAULT_RECONNECT_MAX_DELAY_MS = 5_000;
export const DEFAULT_RECONNECT_MULTIPLIER = 2;
export const DEFAULT_RECONNECT_JITTER = 0.5;

/** What Nest's own transports answer when no handler matches a request. */
export const NO_MESSAGE_HANDLER = 'There is no matching message handler defined in the remote service.';
/** What Nest logs for an event nobody handles (its own wording). */
export const NO_EVENT_HANDLER = 'There is no matching event handler defined in the remote service. Event pattern: ';
