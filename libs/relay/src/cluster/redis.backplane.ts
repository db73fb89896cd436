import { Logger } from '@nestjs/common';
import { Redis, type RedisOptions } from 'ioredis';
import type { Backplane, BackplaneListener } from './backplane.js';

/** Redis backplane settings (`cluster.redis` of the relay options). */
export interface RedisBackplaneOptions {
  /** A `redis://` / `rediss://` URL, or ioredis options. */
  redis: string | RedisOptions;
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

/**
 * Relays talk through Redis pub/sub: one channel every relay listens to and
 * one per relay instance. Two connections (a subscriber cannot publish).
 * Messages for one channel in one tick go out as one PUBLISH of
 * length-prefixed messages (Redis then handles, and the receiving relay
 * parses, one pub/sub message instead of one per forwarded frame). Nothing is
 * queued while Redis is away (the cluster treats remote relays as gone
 * then), and both connections retry until Redis is back.
 */
export class RedisBackplane implements Backplane {
  readonly description: string;
  private readonly logger = new Logger(RedisBackplane.name);
  private readonly prefix: string;
  private pub: Redis | undefined;
  private sub: Redis | undefined;
  private up = false;
  private closing = false;
  /** This tick's messages, by channel, with their size. */
  private readonly batches = new Map<string, { messages: Uint8Array[]; bytes: number }>();
  private flushScheduled = false;

  constructor(private readonly options: RedisBackplaneOptions) {
    this.prefix = options.channelPrefix ?? DEFAULT_CHANNEL_PREFIX;
    this.description = describe(options.redis);
  }

  async start(self: string, listener: BackplaneListener): Promise<void> {
    const all = `${this.prefix}:all`;
    const mine = `${this.prefix}:relay:${self}`;
    const base: RedisOptions = {
      lazyConnect: true,
      maxRetriesPerRequest: null,
      retryStrategy: times => Math.min(50 * times, MAX_RETRY_DELAY_MS),
      connectionName: `wsrelay-${self}`,
    };
    const make = (extra: RedisOptions) =>
      typeof this.options.redis === 'string'
        ? new Redis(this.options.redis, { ...base, ...extra })
        : new Redis({ ...this.options.redis, ...base, ...extra });
    // No auto-pipelining: write() already makes one PUBLISH per channel per tick, and ioredis would hold it for a setImmediate.
    const pub = (this.pub = make({ enableOfflineQueue: false }));
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
  }

  publish(message: Uint8Array): void {
    this.write(`${this.prefix}:all`, message);
  }

  send(relay: string, message: Uint8Array): void {
    this.write(`${this.prefix}:relay:${relay}`, message);
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([this.pub, this.sub].map(c => c?.quit().catch(() => c.disconnect())));
  }

  private write(channel: string, message: Uint8Array): void {
    if (!this.up || this.pub === undefined) return;
    let batch = this.batches.get(channel);
    if (batch === undefined) this.batches.set(channel, (batch = { messages: [], bytes: 0 }));
    batch.messages.push(message);
    batch.bytes += 4 + message.byteLength;
    if (batch.bytes >= MAX_BATCH_BYTES) {
      this.publishBatch(channel, batch.messages, batch.bytes);
      this.batches.delete(channel);
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const [channel, batch] of this.batches) this.publishBatch(channel, batch.messages, batch.bytes);
    this.batches.clear();
  }

  /** One PUBLISH: each message as a 4-byte big-endian length and its bytes. */
  private publishBatch(channel: string, messages: Uint8Array[], bytes: number): void {
    if (!this.up || this.pub === undefined) return;
    const out = Buffer.allocUnsafe(bytes);
    let at = 0;
    for (const m of messages) {
      out.writeUInt32BE(m.byteLength, at);
      out.set(m, at + 4);
      at += 4 + m.byteLength;
    }
    this.pub.publish(channel, out).catch(() => undefined);
  }

  private unbatch(batch: Buffer, listener: BackplaneListener): void {
    let at = 0;
    while (at + 4 <= batch.length) {
      const length = batch.readUInt32BE(at);
      if (at + 4 + length > batch.length) break;
      listener.message(batch.subarray(at + 4, at + 4 + length));
      at += 4 + length;
    }
    if (at !== batch.length) this.logger.warn(`Dropped ${batch.length - at} bytes of a malformed cluster batch`);
  }
}

/** The Redis address without credentials. */
function describe(redis: string | RedisOptions): string {
  if (typeof redis !== 'string') return `redis://${redis.host ?? '127.0.0.1'}:${redis.port ?? 6379}`;
  try {
    const u = new URL(redis);
    return `${u.protocol}//${u.hostname}:${u.port || 6379}`;
  } catch {
    return 'redis';
  }
}
