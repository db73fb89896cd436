import type { WritePacket } from '@nestjs/microservices';
import { ResponseFlag } from '@wsrelay/protocol';
import { of, range, Subject } from 'rxjs';
import { type PreparedResponse, type ResponseSink, ResponseStream } from './response-stream.js';

/** A sink that "encodes" a value as its JSON text, and records what was written and what was kept for later. */
function recordingSink() {
  const written: Array<{ flags: number; value: unknown }> = [];
  let kept = 0;
  const sink: ResponseSink = {
    prepare(packet: WritePacket, keep: boolean): PreparedResponse {
      if (keep) kept++;
      const isError = packet.err != null;
      const value: unknown = isError ? packet.err : packet.response;
      const flags = isError ? ResponseFlag.ERROR | ResponseFlag.DONE : packet.isDisposed ? ResponseFlag.DONE : 0;
      return { flags, payload: value === undefined ? null : new TextEncoder().encode(JSON.stringify(value)) };
    },
    write(response: PreparedResponse): void {
      const value: unknown = response.payload === null ? undefined : JSON.parse(new TextDecoder().decode(response.payload));
      written.push({ flags: response.flags, value });
    },
    backedUp: () => false,
  };
  return { sink, written, kept: () => kept };
}

/** Lets the next ticks and the microtasks run. */
const settle = () => new Promise(resolve => setImmediate(resolve));

describe('ResponseStream', () => {
  it('sends a single value and its completion as one RESPONSE, on the next tick', async () => {
    const { sink, written } = recordingSink();
    new ResponseStream(sink, 'p', undefined, 1024).start(of(42));
    expect(written).toEqual([]);
    await settle();
    expect(written).toEqual([{ flags: ResponseFlag.DONE, value: 42 }]);
  });

  it('sends what its credit allows, keeps the rest (encoded), and sends more as credit is granted', async () => {
    const { sink, written, kept } = recordingSink();
    const stream = new ResponseStream(sink, 'p', 2, 1024);
    stream.start(range(0, 5));
    await settle();
    expect(written.map(w => w.value)).toEqual([0, 1]);
    // Three values wait: the first, encoded to be sent, is copied; the two behind it are encoded to be kept.
    expect(kept()).toBe(2);
    stream.grant(2);
    expect(written.map(w => w.value)).toEqual([0, 1, 2, 3]);
    stream.grant(1);
    expect(written.at(-1)).toEqual({ flags: ResponseFlag.DONE, value: 4 });
    expect(written).toHaveLength(5);
  });

  it('a completion or an error takes no credit', async () => {
    const { sink, written } = recordingSink();
    const source = new Subject<number>();
    const stream = new ResponseStream(sink, 'p', 1, 1024);
    stream.start(source);
    source.next(1);
    await settle();
    source.error({ status: 'error', message: 'boom' });
    await settle();
    expect(written).toEqual([
      { flags: 0, value: 1 },
      { flags: ResponseFlag.ERROR | ResponseFlag.DONE, value: { status: 'error', message: 'boom' } },
    ]);
  });

  it('past maxHeldBytes it stops the source and fails the stream with SLOW_CONSUMER, once', async () => {
    const { sink, written } = recordingSink();
    const source = new Subject<string>();
    const stream = new ResponseStream(sink, 'big', 1, 100);
    stream.start(source);
    expect(source.observed).toBe(true);
    source.next('a');
    await settle();
    for (let i = 0; i < 10; i++) source.next('x'.repeat(30));
    await settle();
    expect(source.observed).toBe(false);
    expect(written).toHaveLength(2);
    expect(written[1]).toMatchObject({ flags: ResponseFlag.ERROR | ResponseFlag.DONE, value: { code: 'SLOW_CONSUMER' } });
    stream.grant(10);
    await settle();
    expect(written).toHaveLength(2);
  });

  it('pulls an async iterable only while there is room for a value, and returns it when unsubscribed', async () => {
    const { sink, written } = recordingSink();
    let pulled = 0;
    let returned = false;
    async function* numbers() {
      try {
        for (let i = 0; ; i++) {
          pulled++;
          yield i;
        }
      } finally {
        returned = true;
      }
    }
    const stream = new ResponseStream(sink, 'p', 3, 1024);
    stream.start(of(numbers()));
    await settle();
    expect(pulled).toBe(3);
    expect(written.map(w => w.value)).toEqual([0, 1, 2]);
    stream.grant(2);
    await settle();
    expect(pulled).toBe(5);
    stream.unsubscribe();
    await settle();
    expect(returned).toBe(true);
    expect(pulled).toBe(5);
  });

  it('sends what the Observable emitted after an async iterable once the iterable is done, in order', async () => {
    const { sink, written } = recordingSink();
    async function* two() {
      yield 'a';
      yield 'b';
    }
    const stream = new ResponseStream(sink, 'p', undefined, 1024);
    const source = new Subject<unknown>();
    stream.start(source);
    source.next(two());
    source.next('c');
    source.complete();
    await settle();
    await settle();
    expect(written).toEqual([
      { flags: 0, value: 'a' },
      { flags: 0, value: 'b' },
      { flags: ResponseFlag.DONE, value: 'c' },
    ]);
  });

  it('counts a value kept for credit once, however many times the stream waits with it first in line', async () => {
    const { sink, written } = recordingSink();
    const source = new Subject<string>();
    // Each value is 34 bytes encoded, 98 held: two fit in 200, three do not.
    const stream = new ResponseStream(sink, 'p', 1, 200);
    stream.start(source);
    source.next('x'.repeat(32));
    await settle();
    for (let round = 0; round < 50; round++) {
      source.next('x'.repeat(32));
      await settle();
      stream.grant(1);
    }
    expect(written).toHaveLength(51);
    expect(written.every(w => w.flags === 0)).toBe(true);
  });

  it('stops at its last RESPONSE: an error made of a value that cannot be sent ends the stream, and closes a pulled generator', async () => {
    const written: number[] = [];
    let returned = false;
    const sink: ResponseSink = {
      prepare: packet =>
        packet.response === 1
          ? { flags: ResponseFlag.ERROR | ResponseFlag.DONE, payload: new Uint8Array([1]) }
          : { flags: packet.isDisposed ? ResponseFlag.DONE : 0, payload: new Uint8Array([2]) },
      write: r => void written.push(r.flags),
      backedUp: () => false,
    };
    async function* numbers() {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        returned = true;
      }
    }
    let ended = 0;
    new ResponseStream(sink, 'p', 4, 1024).start(of(numbers()), () => ended++);
    await settle();
    await settle();
    expect(written).toEqual([0, ResponseFlag.ERROR | ResponseFlag.DONE]);
    expect(returned).toBe(true);
    expect(ended).toBe(1);
  });

  it('runs its end hook once the stream is over, not when the Observable that carried a generator completed', async () => {
    const { sink, written } = recordingSink();
    let release!: () => void;
    const gate = new Promise<void>(resolve => (release = resolve));
    async function* slow() {
      yield 1;
      await gate;
      yield 2;
    }
    let ended = 0;
    new ResponseStream(sink, 'p', undefined, 1024).start(of(slow()), () => ended++);
    await settle();
    expect(ended).toBe(0);
    release();
    await settle();
    await settle();
    expect(written.at(-1)).toEqual({ flags: ResponseFlag.DONE, value: 2 });
    expect(ended).toBe(1);
  });

  it('survives an async iterable whose iterator method throws, or whose return() is not a promise', async () => {
    const { sink, written } = recordingSink();
    const broken = {
      [Symbol.asyncIterator]: () => {
        throw new Error('no iterator');
      },
    };
    new ResponseStream(sink, 'p', undefined, 1024).start(of(broken));
    await settle();
    expect(written).toEqual([{ flags: ResponseFlag.ERROR | ResponseFlag.DONE, value: {} }]);
    const odd = { [Symbol.asyncIterator]: () => ({ next: () => new Promise(() => undefined), return: () => ({ done: true }) }) };
    const stream = new ResponseStream(sink, 'p', undefined, 1024);
    stream.start(of(odd));
    await settle();
    expect(() => stream.unsubscribe()).not.toThrow();
  });

  it('drops what waits when unsubscribed while out of credit, and sends nothing more', async () => {
    const { sink, written } = recordingSink();
    const stream = new ResponseStream(sink, 'p', 1, 1024);
    stream.start(range(0, 5));
    await settle();
    stream.unsubscribe();
    stream.grant(10);
    await settle();
    expect(written).toEqual([{ flags: 0, value: 0 }]);
  });
});
