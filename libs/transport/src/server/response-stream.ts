import type { WritePacket } from '@nestjs/microservices';
import { MAX_CREDIT, RelayErrorCode, RelayErrorMessages, ResponseFlag } from '@wsrelay/protocol';
import type { Observable, Subscription } from 'rxjs';

/** A RESPONSE as it goes out: its flags and its encoded payload. */
export interface PreparedResponse {
  flags: number;
  payload: Uint8Array | null;
}

/** Where a stream's packets go: serialized and encoded, then written as RESPONSEs. */
export interface ResponseSink {
  /**
   * `packet` serialized and encoded; `keep`: its payload is its own (to be
   * sent later), not the encoder's scratch buffer. Never throws: what cannot
   * be serialized or encoded is an ERROR|DONE response.
   */
  prepare(packet: WritePacket, keep: boolean): PreparedResponse;
  write(response: PreparedResponse): void;
  /** The connection has much unsent (no flow control: an async iterable waits for it, not for credit). */
  backedUp(): boolean;
}

/** How far a pulled async iterable runs ahead of its sending without flow control. */
const PULL_AHEAD = 16;
/** Without flow control, how often a pull held back by a backed-up connection looks again. */
const BACKED_UP_RECHECK_MS = 5;
/** What a held value costs besides its payload (the packet and its response), counted against maxHeldBytes. */
const HELD_OVERHEAD_BYTES = 64;

type Queued = WritePacket & { prepared?: PreparedResponse };

/**
 * The RESPONSEs of one request, from the handler's result to the relay, in
 * order. As Nest's own `Server.send`, packets go out on the next tick (a
 * value followed by the completion is one RESPONSE with DONE).
 *
 * With flow control (the caller's `window`), a RESPONSE with a value takes a
 * credit; without credit the stream waits. An Observable cannot wait: its
 * values are kept here, encoded, up to `maxHeldBytes`, past which the stream
 * stops with SLOW_CONSUMER. An async iterable (returned by the handler, or
 * emitted by its Observable) is pulled only while there is credit for more.
 */
export class ResponseStream {
  private credit: number;
  private readonly queue: Queued[] = [];
  private heldBytes = 0;
  /** The queue waits for credit: everything in it is prepared (and counted in heldBytes). */
  private blocked = false;
  private scheduled = false;
  private stopped = false;
  private subscription?: Subscription;
  /** While an async iterable is pulled, what its Observable emitted after it, in order (`ended`: the Observable's end). */
  private behind?: Array<{ value: unknown } | { ended: WritePacket }>;
  private iterator?: AsyncIterator<unknown>;
  private wake?: () => void;
  /** Run once the stream is over (its last RESPONSE written, or stopped): Nest's processing-end hook. */
  private endHook?: () => void;

  constructor(
    private readonly sink: ResponseSink,
    private readonly pattern: string,
    window: number | undefined,
    private readonly maxHeldBytes: number,
  ) {
    this.credit = window ?? Infinity;
  }

  /** Subscribes to the handler's result stream; `onEnd` runs once it is over. */
  start(stream: Observable<unknown>, onEnd?: () => void): void {
    if (this.stopped) {
      onEnd?.();
      return;
    }
    this.endHook = onEnd;
    this.subscription = stream.subscribe({
      next: value => this.onValue(value),
      error: (err: unknown) => this.onSourceEnd({ err }),
      complete: () => this.onSourceEnd({ isDisposed: true }),
    });
  }

  /** CREDIT: the caller took values and grants as many more. */
  grant(credit: number): void {
    if (this.credit === Infinity || this.stopped) return;
    this.credit = Math.min(this.credit + credit, MAX_CREDIT);
    if (this.blocked) this.drain();
    this.wakePull();
  }

  /** The call is over (answered, cancelled, its caller gone): nothing more is pulled or sent. */
  unsubscribe(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.queue.length = 0;
    this.heldBytes = 0;
    this.subscription?.unsubscribe();
    this.wakePull();
    const iterator = this.iterator;
    // Closed whatever its return() does (a plain object, a throw): a database cursor behind it must not stay open.
    if (iterator !== undefined)
      void Promise.resolve()
        .then(() => iterator.return?.())
        .catch(() => undefined);
    const endHook = this.endHook;
    this.endHook = undefined;
    endHook?.();
  }

  private onValue(value: unknown): void {
    if (this.behind !== undefined) this.behind.push({ value });
    else if (isAsyncIterable(value)) void this.pull(value);
    else this.push({ response: value });
  }

  private onSourceEnd(packet: WritePacket): void {
    if (this.behind !== undefined) this.behind.push({ ended: packet });
    else this.push(packet);
  }

  /** Pulls an async iterable's values, each once there is room for it; then what its Observable emitted meanwhile. */
  private async pull(iterable: AsyncIterable<unknown>): Promise<void> {
    this.behind = [];
    try {
      const iterator = (this.iterator = iterable[Symbol.asyncIterator]());
      for (;;) {
        await this.room();
        if (this.stopped) return;
        const step = await iterator.next();
        if (step.done === true || this.stopped) break;
        this.push({ response: step.value });
      }
    } catch (err) {
      // As a failing Observable: the error ends the stream (what the Observable emitted after it is dropped).
      this.behind = undefined;
      this.push({ err });
      return;
    }
    if (this.stopped) return;
    const behind = this.behind;
    this.behind = undefined;
    this.iterator = undefined;
    for (const item of behind) {
      if ('ended' in item) this.onSourceEnd(item.ended);
      else this.onValue(item.value);
    }
  }

  /**
   * Resolves once a pulled value would not wait: fewer queued than the credit
   * left (or PULL_AHEAD without flow control, and then only while the
   * connection is not backed up).
   */
  private async room(): Promise<void> {
    if (this.credit === Infinity) {
      while (!this.stopped && this.sink.backedUp()) await new Promise(resolve => setTimeout(resolve, BACKED_UP_RECHECK_MS));
    }
    if (this.stopped || this.queue.length < Math.min(this.credit, PULL_AHEAD)) return;
    await new Promise<void>(resolve => (this.wake = resolve));
  }

  private wakePull(): void {
    const wake = this.wake;
    if (wake === undefined || (!this.stopped && this.queue.length >= Math.min(this.credit, PULL_AHEAD))) return;
    this.wake = undefined;
    wake();
  }

  private push(packet: WritePacket): void {
    if (this.stopped) return;
    const last = this.queue.at(-1);
    if (packet.isDisposed === true && last !== undefined) {
      // The completion goes with the last packet, as Nest's transports send it.
      last.isDisposed = true;
      if (last.prepared !== undefined) last.prepared.flags |= ResponseFlag.DONE;
      return;
    }
    this.queue.push(packet);
    if (this.blocked) this.hold(packet);
    else if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(() => {
        this.scheduled = false;
        this.drain();
      });
    }
  }

  /** Sends what is queued, in order, while there is credit for it. */
  private drain(): void {
    this.blocked = false;
    const queue = this.queue;
    while (queue.length > 0 && !this.stopped) {
      const head = queue[0];
      const response = head.prepared ?? this.sink.prepare(head, false);
      const takesCredit = response.payload !== null && (response.flags & ResponseFlag.ERROR) === 0;
      if (takesCredit && this.credit <= 0) {
        this.block(head, response);
        return;
      }
      if (takesCredit) this.credit--;
      queue.shift();
      if (head.prepared !== undefined) this.heldBytes -= heldSize(head.prepared);
      this.sink.write(response);
      // Its last RESPONSE (a completion, an error, or one made of what could not be sent): the stream is over.
      if ((response.flags & (ResponseFlag.DONE | ResponseFlag.ERROR)) !== 0) this.unsubscribe();
    }
    this.wakePull();
  }

  /** Out of credit: what is queued waits, encoded, and counts against maxHeldBytes. */
  private block(head: Queued, response: PreparedResponse): void {
    this.blocked = true;
    if (head.prepared === undefined) {
      // The encoder's scratch buffer: copied to wait.
      this.keep(head, { flags: response.flags, payload: response.payload === null ? null : response.payload.slice() });
    }
    for (let i = 1; i < this.queue.length && !this.stopped; i++) this.hold(this.queue[i]);
    this.overflowed();
  }

  private hold(packet: Queued): void {
    if (packet.prepared !== undefined) return;
    this.keep(packet, this.sink.prepare(packet, true));
    this.overflowed();
  }

  /** A packet waits as its encoded RESPONSE only: its value can be collected. */
  private keep(packet: Queued, prepared: PreparedResponse): void {
    packet.prepared = prepared;
    packet.response = undefined;
    packet.err = undefined;
    this.heldBytes += heldSize(prepared);
  }

  /** Past maxHeldBytes: the stream stops, and its caller is told why. */
  private overflowed(): void {
    if (this.heldBytes <= this.maxHeldBytes || this.stopped) return;
    const held = this.heldBytes;
    this.unsubscribe();
    const message = RelayErrorMessages.streamOverflow(this.pattern, held, this.maxHeldBytes);
    this.sink.write(this.sink.prepare({ err: { status: 'error', code: RelayErrorCode.SLOW_CONSUMER, message } }, false));
  }
}

function heldSize(prepared: PreparedResponse): number {
  return (prepared.payload?.length ?? 0) + HELD_OVERHEAD_BYTES;
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function'
  );
}
