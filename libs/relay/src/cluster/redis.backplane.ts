import { Logger } from '@nestjs/common';
import type { Redis, RedisOptions } from 'ioredis';
import type { Backplane, BackplaneListener } from './backplane.js';

/**
 * ioredis connection options (its `RedisOptions`: host, port, password, tls, ...),
 * typed loosely so that the relay's types do not need ioredis installed.
 */
export type RelayRedisOptions = { host?: string; port?: number } & Record<string, unknown>;

/** Redis backplane settings (`cluster.redis` of the relay options). */
export interface RedisBackplaneOptions {
  /** A `redis://` / `rediss://` URL, or ioredis options. */
  redis: string | RelayRedisOptions;
  /**
   * Prefix of the pub/sub channels, so that several clusters can share one Redis.
   * @default 'wsrelay'
   */
  channelPrefix?: string;
}

export const DEFAULT_CHANNEL_PREFIX = 'wsrelay';
/** Longest wait between two reconnect attempts to Redis, in ms. */
const MAX_RETRY_DELAY_MS = 1000;

/** A batch is published once it holds this many bytes, even before the tick ends. */
const MAX_BATCH_BYTES = 1024 * 1024;
/** First byte of every PUBLISH: the batch format (a relay drops a batch it does not know, and says so). */
const BATCH_FORMAT = 1;
/**
 * Bytes published but not yet confirmed by Redis past which its connection is
 * taken for stalled (reported down and reconnected) instead of growing without bound.
 */
const MAX_UNCONFIRMED_BYTES = 64 * 1024 * 1024;
/** How long close() waits for Redis to answer QUIT. */
const QUIT_TIMEOUT_MS = 500;

/**
 * Relays talk through Redis pub/sub: one channel every relay listens to and
 * one per relay instance. Two connections (a subscriber cannot publish).
 * The messages of one tick go out as few PUBLISHes as their order allows
 * (consecutive messages to one channel share one, length-prefixed), so Redis
 * handles, and the receiving relay parses, one pub/sub message instead of one
 * per forwarded frame. Nothing is queued while Redis is away, nor re-sent
 * after a reconnect (it would arrive stale: the cluster treats remote relays
 * as gone meanwhile), and both connections retry until Redis is back.
 */
export class RedisBackplane implements Backplane {
  readonly description: string;
  private readonly logger = new Logger(RedisBackplane.name);
  private readonly prefix: string;
  private pub: Redis | undefined;
  private sub: Redis | undefined;
  private up = false;
  private closing = false;
  /** This tick's messages, in order, as runs of one channel each. */
  private runs: Array<{ channel: string; messages: Uint8Array[]; bytes: number }> = [];
  private flushScheduled = false;
  /** Bytes handed to ioredis and not yet answered by Redis. */
  private unconfirmed = 0;
  private warnedFormats = new Set<number>();

  /** The channel every relay listens to. */
  private readonly all: string;
  /** Each relay's own channel, named once. */
  private readonly channels = new Map<string, string>();

  constructor(private readonly options: RedisBackplaneOptions) {
    this.prefix = options.channelPrefix ?? DEFAULT_CHANNEL_PREFIX;
    this.all = `${this.prefix}:all`;
    this.description = describe(options.redis);
  }

  async prepare(): Promise<void> {
    await loadIoredis();
  }

  async start(self: string, listener: BackplaneListener): Promise<void> {
    const { Redis } = await loadIoredis();
    const all = this.all;
    const mine = this.channelOf(self);
    const base: RedisOptions = {
      lazyConnect: true,
      maxRetriesPerRequest: null,
      retryStrategy: times => Math.min(50 * times, MAX_RETRY_DELAY_MS),
      connectionName: `wsrelay-${self}`,
    };
    const make = (extra: RedisOptions) =>
      typeof this.options.redis === 'string'
        ? new Redis(this.options.redis, { ...base, ...extra })
        : new Redis({ ...(this.options.redis as RedisOptions), ...base, ...extra });
    // No auto-pipelining: write() already batches each tick, and ioredis would hold it for a setImmediate.
    const pub = (this.pub = make({ enableOfflineQueue: false, autoResendUnfulfilledCommands: false }));
    const sub = (this.sub = make({ autoResubscribe: true }));
    const update = () => {
      const now = !this.closing && pub.status === 'ready' && sub.status === 'ready';
      if (now === this.up) return;
      this.up = now;
      listener.connection(now);
    };
    for (const client of [pub, sub]) {
      client.on('ready', update);
      client.on('close', update);
      client.on('end', update);
      // ioredis retries by itself; errors are reported through connection(false).
      client.on('error', () => undefined);
    }
    sub.on('messageBuffer', (_channel: Buffer, batch: Buffer) => this.unbatch(batch, listener));
    // Queued in the subscriber's offline queue until Redis answers, and resubscribed after every reconnect.
    sub.subscribe(all, mine).catch(err => {
      if (!this.closing) this.logger.error(`Redis subscribe failed: ${(err as Error).message}`);
    });
    // A first connection that fails is retried by ioredis; the relay starts either way.
    await Promise.all([pub.connect().catch(() => undefined), sub.connect().catch(() => undefined)]);
    // The contract: resolve once able to publish, or say first that we cannot yet.
    if (!this.up) listener.connection(false);
  }

  publish(message: Uint8Array): void {
    this.write(this.all, message);
  }

  send(relay: string, message: Uint8Array): void {
    this.write(this.channelOf(relay), message);
  }

  private channelOf(relay: string): string {
    let channel = this.channels.get(relay);
    if (channel === undefined) {
      // Bounded by the relays a cluster has seen (ids come only from messages that decoded).
      if (this.channels.size >= 10_000) this.channels.clear();
      this.channels.set(relay, (channel = `${this.prefix}:relay:${relay}`));
    }
    return channel;
  }

  /** Drops what either connection holds and reconnects both (the cluster stopped hearing itself). */
  reset(): void {
    this.runs = [];
    this.unconfirmed = 0;
    this.pub?.disconnect(true);
    this.sub?.disconnect(true);
  }

  async close(): Promise<void> {
    this.closing = true;
    this.runs = [];
    // The subscriber has nothing to flush; QUIT would queue behind a SUBSCRIBE that Redis never answered.
    this.sub?.disconnect();
    const pub = this.pub;
    if (pub === undefined) return;
    if (pub.status !== 'ready') {
      pub.disconnect();
      return;
    }
    // A stalled Redis never answers QUIT: give it a moment, then cut.
    await Promise.race([pub.quit().catch(() => undefined), new Promise(resolve => setTimeout(resolve, QUIT_TIMEOUT_MS).unref())]);
    pub.disconnect();
  }

  private write(channel: string, message: Uint8Array): void {
    if (!this.up || this.pub === undefined) return;
    let run = this.runs[this.runs.length - 1];
    if (run === undefined || run.channel !== channel || run.bytes >= MAX_BATCH_BYTES) {
      this.runs.push((run = { channel, messages: [], bytes: 1 }));
    }
    run.messages.push(message);
    run.bytes += 4 + message.byteLength;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    const runs = this.runs;
    this.runs = [];
    for (const run of runs) this.publishRun(run.channel, run.messages, run.bytes);
  }

  /** One PUBLISH: the format byte, then each message as a 4-byte big-endian length and its bytes. */
  private publishRun(channel: string, messages: Uint8Array[], bytes: number): void {
    const pub = this.pub;
    if (!this.up || pub === undefined) return;
    if (this.unconfirmed + bytes > MAX_UNCONFIRMED_BYTES) {
      this.logger.warn(`Redis has not confirmed ${this.unconfirmed} bytes of publishes: taking it for stalled and reconnecting`);
      this.reset();
      return;
    }
    const out = Buffer.allocUnsafe(bytes);
    out[0] = BATCH_FORMAT;
    let at = 1;
    for (const m of messages) {
      out.writeUInt32BE(m.byteLength, at);
      out.set(m, at + 4);
      at += 4 + m.byteLength;
    }
    this.unconfirmed += bytes;
    pub.publish(channel, out).then(
      () => (this.unconfirmed -= bytes),
      () => (this.unconfirmed = Math.max(0, this.unconfirmed - bytes)),
    );
  }

  private unbatch(batch: Buffer, listener: BackplaneListener): void {
    if (batch.length === 0 || batch[0] !== BATCH_FORMAT) {
      const format = batch[0] ?? -1;
      if (!this.warnedFormats.has(format)) {
        this.warnedFormats.add(format);
        this.logger.warn(
          `Dropped cluster messages in batch format ${format}; this relay reads format ${BATCH_FORMAT} (mixed relay versions?)`,
        );
      }
      return;
    }
    let at = 1;
    while (at + 4 <= batch.length) {
      const length = batch.readUInt32BE(at);
      if (at + 4 + length > batch.length) break;
      listener.message(batch.subarray(at + 4, at + 4 + length));
      at += 4 + length;
    }
    if (at !== batch.length) this.logger.warn(`Dropped ${batch.length - at} bytes of a malformed cluster batch`);
  }
}

/** The ioredis package's error when it is missing: it is an optional peer dependency of the relay. */
const MISSING_IOREDIS =
  'A relay cluster over Redis (cluster.redis, RELAY_REDIS_URL) needs the "ioredis" package, which is not installed: ' +
  'run "npm install ioredis" where @wsrelay/relay is installed, or leave cluster.redis unset to run a single relay.';

/** ioredis, loaded on first use: only relays that run in a Redis cluster need it installed. */
async function loadIoredis(): Promise<{ Redis: typeof Redis }> {
  try {
    return await import('ioredis');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && String((err as Error).message).includes("'ioredis'")) {
      throw new Error(MISSING_IOREDIS, { cause: err });
    }
    throw err;
  }
}

/** The Redis address without credentials. */
function describe(redis: string | RelayRedisOptions): string {
  if (typeof redis !== 'string') return `redis://${redis.host ?? '127.0.0.1'}:${redis.port ?? 6379}`;
  try {
    const u = new URL(redis);
    return `${u.protocol}//${u.hostname}:${u.port === '' ? 6379 : u.port}`;
  } catch {
    return 'redis';
  }
}
