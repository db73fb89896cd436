/**
 * The abusive side of `npm run bench:abuse`, in a process of its own so that
 * its writing does not starve the caller measured in the bench's process.
 * ABUSE = JSON { url, kind, perSecond?, frames? }.
 *
 * Floods (`ping`, `deep`, `bomb`, `waits`, `stall`, `churn`) run until
 * killed and report `{ answered }` every 100 ms. Cost runs (`cost-ping`,
 * `cost-deep`, `cost-request`) send `{ ready: true }`, wait for `'go'`, send
 * `frames` frames, and report `{ done: true }` once the relay has handled
 * every one of them (a PING sent last is answered last).
 */
import { encodePayload, FrameCodec, FrameType } from '@wsrelay/protocol';
import WebSocket from 'ws';

export type AbuseKind = 'ping' | 'deep' | 'bomb' | 'waits' | 'stall' | 'churn' | 'routes' | 'cost-ping' | 'cost-deep' | 'cost-request';

export interface AbuseSpec {
  url: string;
  kind: AbuseKind;
  perSecond?: number;
  frames?: number;
}

const codec = new FrameCodec();
const PING = codec.encode({ type: FrameType.Ping });
/** A PING whose trailing field is 8 nested arrays: as small as PING, refused (BAD_FRAME) for its depth. */
const DEEP_PING = new Uint8Array([0x92, FrameType.Ping, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x90]);
/** A 1 MB PING of a million nested arrays. */
const BOMB = (() => {
  const b = new Uint8Array(1_000_000);
  b.set([0x92, FrameType.Ping]);
  b.fill(0x91, 2, b.length - 1);
  b[b.length - 1] = 0x90;
  return b;
})();
const WINDOW = 64;

function hello(nodeId: string): Uint8Array {
  return codec.encode({ type: FrameType.Hello, versions: [1], nodeId, service: null, patterns: [], events: [], queue: null });
}

function request(id: number, pattern: string, payload: Uint8Array, timeoutMs: number): Uint8Array {
  return codec.encode({ type: FrameType.Request, id, pattern, payload, timeoutMs, peer: null, ext: null, claims: null });
}

/** A connection that said HELLO (`hi`, by default a plain caller's) and was welcomed. */
async function node(url: string, nodeId: string, hi = hello(nodeId)): Promise<WebSocket> {
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  const welcomed = new Promise(resolve => socket.once('message', resolve));
  socket.send(hi);
  await welcomed;
  return socket;
}

function reportEvery100ms(count: () => number): void {
  setInterval(() => process.send?.({ answered: count() }), 100);
  process.send?.({ answered: count() });
}

/** Writes `frame` as fast as the socket takes it, in batches that leave time to read (or `perSecond`). */
async function flood(url: string, frame: Uint8Array, perSecond?: number): Promise<void> {
  const socket = await node(url, `flooder-${process.pid}`);
  let answered = 0;
  socket.on('message', () => answered++);
  reportEvery100ms(() => answered);
  const pump = (): void => {
    if (socket.readyState !== WebSocket.OPEN) return;
    if (perSecond !== undefined) {
      socket.send(frame);
      setTimeout(pump, 1000 / perSecond);
      return;
    }
    for (let i = 0; i < 256 && socket.bufferedAmount < 1024 * 1024; i++) socket.send(frame);
    setImmediate(pump);
  };
  pump();
}

/** 10,000 WAITs for 4 KB patterns nothing serves, each with the longest timeout (24 days), on one connection. */
async function waits(url: string): Promise<void> {
  const socket = await node(url, `waiter-${process.pid}`);
  let answered = 0;
  socket.on('message', () => answered++);
  for (let id = 1; id <= 10_000; id++) {
    socket.send(codec.encode({ type: FrameType.Wait, id, pattern: `w.${id}.${'p'.repeat(4096 - 16)}`, timeoutMs: 0x7fff_ffff }));
  }
  reportEvery100ms(() => answered);
}

/** 20 connections that ask for 256 KiB answers (32 each) and never read them. */
async function stall(url: string): Promise<void> {
  const payload = encodePayload(256 * 1024);
  for (let n = 0; n < 20; n++) {
    const socket = await node(url, `staller-${process.pid}-${n}`);
    for (let id = 1; id <= 32; id++) socket.send(request(id, 'big', payload, 60_000));
    (socket as unknown as { _socket: { pause(): void } })._socket.pause();
  }
  reportEvery100ms(() => 0);
}

/** Sockets that never say HELLO, reopened as soon as the relay closes them, 500 at once; counts refused upgrades. */
function churn(url: string): void {
  let refused = 0;
  const one = (): void => {
    const socket = new WebSocket(url);
    socket.on('error', () => undefined);
    socket.on('unexpected-response', () => refused++);
    socket.on('close', () => setImmediate(one));
  };
  for (let n = 0; n < 500; n++) one();
  reportEvery100ms(() => refused);
}

/**
 * 1,500 members of one queue group on `x.>`, then events to ever new subjects
 * `x.<n>` (each a route of its own to cache, as wide as the group) from one
 * connection, 2,000 per second; counts the events the members got.
 */
async function routes(url: string): Promise<void> {
  let delivered = 0;
  for (let n = 0; n < 1500; n++) {
    const member = `member-${process.pid}-${n}`;
    const hi = codec.encode({
      type: FrameType.Hello,
      versions: [1],
      nodeId: member,
      service: null,
      patterns: [],
      events: ['x.>'],
      queue: 'q',
    });
    (await node(url, member, hi)).on('message', () => delivered++);
  }
  const emitter = await node(url, `emitter-${process.pid}`);
  const payload = encodePayload(1);
  let subject = 0;
  const event = () =>
    codec.encode({ type: FrameType.Event, id: 0, pattern: `x.${++subject}`, payload, peer: null, ext: null, claims: null });
  setInterval(() => {
    for (let i = 0; i < 20; i++) emitter.send(event());
  }, 10);
  reportEvery100ms(() => delivered);
}

/** Sends `frames` copies of `frame`, then a PING; resolves once that PING's PONG is back (every frame before it was handled). */
async function sendAll(socket: WebSocket, frame: Uint8Array, frames: number): Promise<void> {
  const pongs = frame === PING ? frames + 1 : 1;
  let seen = 0;
  const done = new Promise<void>(resolve =>
    socket.on('message', (data: Buffer) => {
      if (codec.decode(data).type === FrameType.Pong && ++seen === pongs) resolve();
    }),
  );
  let sent = 0;
  await new Promise<void>(resolve => {
    const pump = (): void => {
      for (let i = 0; i < 512 && sent < frames && socket.bufferedAmount < 256 * 1024; i++, sent++) socket.send(frame);
      if (sent < frames) setImmediate(pump);
      else resolve();
    };
    pump();
  });
  socket.send(PING);
  await done;
}

/** Keeps 64 requests in flight to `work` until `frames` answers came back. */
async function requests(socket: WebSocket, frames: number): Promise<void> {
  const payload = encodePayload(1);
  let id = 0;
  let answered = 0;
  await new Promise<void>(resolve => {
    socket.on('message', (data: Buffer) => {
      if (codec.decode(data).type !== FrameType.Response) return;
      if (++answered === frames) resolve();
      else if (id < frames) socket.send(request(++id, 'work', payload, 60_000));
    });
    for (let i = 0; i < WINDOW; i++) socket.send(request(++id, 'work', payload, 60_000));
  });
}

async function cost(spec: AbuseSpec): Promise<void> {
  const socket = await node(spec.url, `cost-${process.pid}`);
  const frames = spec.frames ?? 100_000;
  await new Promise<void>(resolve => {
    process.once('message', () => resolve());
    process.send?.({ ready: true });
  });
  if (spec.kind === 'cost-request') await requests(socket, frames);
  else await sendAll(socket, spec.kind === 'cost-ping' ? PING : DEEP_PING, frames);
  process.send?.({ done: true });
}

export async function abuse(spec: AbuseSpec): Promise<void> {
  switch (spec.kind) {
    case 'ping':
      return flood(spec.url, PING, spec.perSecond);
    case 'deep':
      return flood(spec.url, DEEP_PING, spec.perSecond);
    case 'bomb':
      return flood(spec.url, BOMB, spec.perSecond);
    case 'waits':
      return waits(spec.url);
    case 'stall':
      return stall(spec.url);
    case 'churn':
      return churn(spec.url);
    case 'routes':
      return routes(spec.url);
    default:
      return cost(spec);
  }
}

const raw = process.env.ABUSE;
if (raw !== undefined) {
  abuse(JSON.parse(raw) as AbuseSpec).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
