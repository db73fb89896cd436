/**
 * Preloaded (`--import`, after the TypeScript loader) into each process of
 * `npm run bench:trace`: patches the `ws` package and net.Socket from outside,
 * so the product code in libs/ runs unchanged. For frames that carry a trace
 * marker (see marks.ts) it stamps, per process:
 *
 * - `<kind>.data`: the last 'data' event on the WebSocket's TCP socket before
 *   the frame's 'message' (the earliest point its bytes were in JavaScript);
 * - `<kind>.message`: ws emits 'message', i.e. our handler starts;
 * - `<kind>.send`: our code calls WebSocket#send, or writes a frame it
 *   framed itself straight to the WebSocket's TCP socket (the relay does, when
 *   no extension is negotiated: server frames are not masked, so the marker is
 *   in those bytes as written);
 * - `<kind>.flush`: the first write syscall on that TCP socket after the send
 *   (Socket#_writeGeneric, which _write and _writev both call: at uncork for
 *   a corked socket), stamped as it is issued, so a receiver's 'data' can never
 *   precede it on a shared clock.
 *
 * `<kind>` is req or res (the frame's type). Frames are looked at as ws hands
 * them over (unmasked) or is handed them (before masking); the only TCP-level
 * bytes looked at are frames written past ws, which a server never masks.
 * Stamps go to TRACE_OUT when the process exits.
 */
import { createRequire } from 'node:module';
import { Socket } from 'node:net';
import type WebSocket from 'ws';
import { frameKind, stamp, traceNumberOf, writeStampsAtExit } from './marks.js';

const LAST_DATA = Symbol('trace.lastData');
const PENDING_FLUSH = Symbol('trace.pendingFlush');
const UNDER_WS = Symbol('trace.underWebSocket');
/** Inside WebSocket#send: ws's own writes to the TCP socket are that send, already stamped. */
let inWsSend = 0;

type Raw = Socket & { [LAST_DATA]?: bigint; [PENDING_FLUSH]?: Array<[trace: number, point: string]>; [UNDER_WS]?: true };
type Tapped = WebSocket & { _socket?: Raw };

// The wrappers pass their arguments on as they came (named, or `arguments` where the count varies):
// a rest parameter would allocate an array on every call of every socket, traced or not.

/** Every ws's TCP socket notes when bytes last reached JavaScript (before ws's own 'data' listener runs). */
function tapReads(proto: { setSocket: (this: Tapped, socket: unknown, head: unknown, options: unknown) => void }): void {
  const setSocket = proto.setSocket;
  proto.setSocket = function (this: Tapped, socket: unknown, head: unknown, options: unknown) {
    setSocket.call(this, socket, head, options);
    const raw = this._socket;
    if (raw === undefined) return;
    raw[UNDER_WS] = true;
    raw.prependListener('data', () => {
      raw[LAST_DATA] = process.hrtime.bigint();
    });
  };
}

function tapMessages(proto: { emit: (this: Tapped, event: string | symbol, ...args: unknown[]) => boolean }): void {
  const emit = proto.emit;
  proto.emit = function (this: Tapped, event: string | symbol, data?: unknown) {
    if (event === 'message' && data instanceof Uint8Array) {
      const trace = traceNumberOf(data);
      if (trace >= 0) {
        const now = process.hrtime.bigint();
        const kind = frameKind(data);
        const read = this._socket?.[LAST_DATA];
        if (read !== undefined) stamp(trace, `${kind}.data`, read);
        stamp(trace, `${kind}.message`, now);
      }
    }
    // Events carry 0 to 2 arguments, and some listeners look at how many.
    // eslint-disable-next-line prefer-rest-params
    return Reflect.apply(emit, this, arguments) as boolean;
  };
}

/** Stamps a marked frame's send and books its flush: before the write, as an uncorked socket writes at once. */
function sent(raw: Raw | undefined, trace: number, kind: string): void {
  stamp(trace, `${kind}.send`);
  if (raw !== undefined) (raw[PENDING_FLUSH] ??= []).push([trace, `${kind}.flush`]);
}

function tapSends(proto: { send: (this: Tapped, data: unknown, options: unknown, cb: unknown) => void }): void {
  const send = proto.send;
  proto.send = function (this: Tapped, data: unknown, options: unknown, cb: unknown) {
    if (data instanceof Uint8Array) {
      const trace = traceNumberOf(data);
      if (trace >= 0) sent(this._socket, trace, frameKind(data));
    }
    inWsSend++;
    try {
      send.call(this, data, options, cb);
    } finally {
      inWsSend--;
    }
  };
}

/** The size of a WebSocket frame's header (2, 4 or 10 bytes, and 4 more for a mask). */
function headerSize(frame: Uint8Array): number {
  const len = frame[1] & 0x7f;
  return (len < 126 ? 2 : len === 126 ? 4 : 10) + ((frame[1] & 0x80) !== 0 ? 4 : 0);
}

/** Frames our code framed itself and wrote to a WebSocket's TCP socket, past ws. */
function tapRawWrites(proto: { write: (this: Raw, chunk: unknown, encoding: unknown, cb: unknown) => boolean }): void {
  const write = proto.write;
  proto.write = function (this: Raw, chunk: unknown, encoding: unknown, cb: unknown) {
    if (inWsSend === 0 && this[UNDER_WS] === true && chunk instanceof Uint8Array && chunk.length > 2) {
      const trace = traceNumberOf(chunk);
      if (trace >= 0) sent(this, trace, frameKind(chunk.subarray(headerSize(chunk))));
    }
    return write.call(this, chunk, encoding, cb);
  };
}

function tapFlushes(proto: {
  _writeGeneric: (this: Raw, writev: unknown, data: unknown, encoding: unknown, cb: unknown) => unknown;
}): void {
  const writeGeneric = proto._writeGeneric;
  if (typeof writeGeneric !== 'function') throw new Error('net.Socket.prototype._writeGeneric is gone: this Node cannot be traced');
  proto._writeGeneric = function (this: Raw, writev: unknown, data: unknown, encoding: unknown, cb: unknown) {
    const pending = this[PENDING_FLUSH];
    if (pending !== undefined && pending.length > 0) {
      const now = process.hrtime.bigint();
      for (const [trace, point] of pending) stamp(trace, point, now);
      pending.length = 0;
    }
    return writeGeneric.call(this, writev, data, encoding, cb);
  };
}

/**
 * Every copy of ws a process may run: ours, and the one @nestjs/platform-ws
 * keeps in its own node_modules (the relay's server-side sockets are made by
 * that one). All are loaded through require, so these are the instances the
 * code uses.
 */
function wsCopies(): Set<typeof WebSocket> {
  const anchors = [import.meta.url];
  for (const pkg of ['@nestjs/platform-ws', '@wsrelay/relay', '@wsrelay/transport']) {
    try {
      anchors.push(import.meta.resolve(pkg));
    } catch {
      // Not installed here: nothing of it to tap.
    }
  }
  return new Set(anchors.map(anchor => createRequire(anchor)('ws') as typeof WebSocket));
}

const out = process.env.TRACE_OUT;
if (out === undefined || out === '') throw new Error('TRACE_OUT (the stamp file) is required by bench/trace/tap.ts');
for (const ws of wsCopies()) {
  const proto = ws.prototype as unknown as Parameters<typeof tapReads>[0] &
    Parameters<typeof tapMessages>[0] &
    Parameters<typeof tapSends>[0];
  tapReads(proto);
  tapMessages(proto);
  tapSends(proto);
}
tapRawWrites(Socket.prototype as unknown as Parameters<typeof tapRawWrites>[0]);
tapFlushes(Socket.prototype as unknown as Parameters<typeof tapFlushes>[0]);
writeStampsAtExit(out);
