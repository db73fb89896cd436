import type { MsgpackBounds } from '@wsrelay/protocol';

/** The largest cluster message a relay reassembles and decodes (`cluster.maxMessageBytes`). */
export const DEFAULT_CLUSTER_MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

/**
 * Bounds of every cluster message, checked before it is decoded: the deepest
 * one is a snapshot ([.., nodes[node[patterns[]]]]: 4), the longest REQUEST
 * (12 fields); an element bound well above a snapshot of 400 nodes of 5,000
 * patterns each. Strings are node ids, patterns and error texts.
 */
export const CLUSTER_MESSAGE_BOUNDS: MsgpackBounds & { maxStrBytes: number } = {
  maxDepth: 4,
  maxElements: 4_000_000,
  maxTopLength: 16,
  maxStrBytes: 64 * 1024,
};

/**
 * A message whose encoding is larger goes in pieces of this size (CHUNKs):
 * Redis cuts a subscriber whose output buffer passes 32 MiB, or stays over
 * 8 MiB for 60 s (its default `client-output-buffer-limit pubsub 32mb 8mb 60`).
 */
export const CLUSTER_CHUNK_BYTES = 256 * 1024;
/**
 * CHUNKs sent to one relay and not yet pulled by it, all its chunked messages together: at most 1 MiB of them waits
 * in Redis for that relay's subscriber (besides each message's head, and messages small enough to go whole).
 */
export const CLUSTER_CHUNK_WINDOW = 4;
/** The first CHUNK of a message, sent at once to fix its place in order (outside the window), carries this many bytes. */
export const CLUSTER_CHUNK_HEAD_BYTES = 1024;
/** Most CHUNKs of one message a receiver takes. */
export const CLUSTER_MAX_CHUNKS = 65_536;
/** Bytes of messages a receiver holds back behind an incomplete chunked message of the same relay. */
export const CLUSTER_MAX_DEFERRED_BYTES = 32 * 1024 * 1024;
