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
export const DEFAULT_STREAM_WINDOW = 64;
export const DEFAULT_MAX_STREAM_BUFFERED_BYTES = 64 * 1024 * 1024;
/** Start of every metric's name (`metrics.prefix`). */
export const DEFAULT_METRICS_PREFIX = 'wsrelay_';
/** Upper bounds of the duration histograms' buckets, in seconds (`metrics.buckets`): a call through a relay takes about a millisecond. */
export const DEFAULT_METRICS_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
