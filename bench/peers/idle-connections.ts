/**
 * W6 connection holder: opens COUNT idle WebSockets to URL and keeps them
 * alive the way a node does. PROTOCOL=wsrelay completes our handshake
 * (HELLO with a unique node id, no patterns; WELCOME) and PROTOCOL=raw sends
 * an empty SUB. Each socket answers the relay's pings (ws does) and, as
 * RelayConnection does, pings the relay itself only after two HEARTBEAT_MS
 * intervals in which nothing came from it.
 *
 * Prints "OPEN <established> <failed>" once every attempt has settled;
 * answers "STATUS" on stdin with "STATUS <open> <closed> <unanswered pings>".
 *
 * URL, PROTOCOL (wsrelay), COUNT, HEARTBEAT_MS (10000), CONCURRENCY (100), ID_PREFIX.
 */
import { Encoder } from '@msgpack/msgpack';
import { FrameCodec, FrameType, SUPPORTED_PROTOCOL_VERSIONS } from '@wsrelay/protocol';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { Raw } from './raw-protocol.js';

const url = process.env.URL as string;
const raw = process.env.PROTOCOL === 'raw';
const count = Number(process.env.COUNT ?? 1000);
const heartbeatMs = Number(process.env.HEARTBEAT_MS ?? 10_000);
const concurrency = Number(process.env.CONCURRENCY ?? 100);
const idPrefix = process.env.ID_PREFIX ?? `idle-${process.pid}`;
const codec = new FrameCodec();

let started = 0;
let settled = 0;
let established = 0;
let failed = 0;
let open = 0;
let closed = 0;
let unanswered = 0;

function connect(i: number): void {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  let done = false;
  let wasOpen = false;
  let awaitingPong = false;
  let heard = false;
  const settle = (ok: boolean) => {
    if (done) return;
    done = true;
    if (ok) established++;
    else failed++;
    settled++;
    next();
  };
  ws.on('open', () => {
    open++;
    wasOpen = true;
    if (raw) {
      ws.send(new Encoder().encode([Raw.SUB, [], []]));
      settle(true);
    } else {
      ws.send(
        codec.encode({
          type: FrameType.Hello,
          versions: [...SUPPORTED_PROTOCOL_VERSIONS],
          nodeId: `${idPrefix}-${i}`,
          service: null,
          patterns: [],
          events: [],
          queue: null,
        }),
      );
    }
    // As NodeHeartbeat: a check every half interval; a ping only after two intervals without a word from the relay.
    let silentHalves = 0;
    const timer = setInterval(() => {
      if (heard) {
        heard = false;
        silentHalves = 0;
        return;
      }
      if (++silentHalves % 4 !== 0 || ws.readyState !== WebSocket.OPEN) return;
      if (awaitingPong) unanswered++;
      awaitingPong = true;
      ws.ping();
    }, heartbeatMs / 2);
    ws.once('close', () => clearInterval(timer));
  });
  ws.on('ping', () => (heard = true));
  ws.on('message', (data: Buffer) => {
    heard = true;
    if (!raw && !done) settle(codec.decode(data).type === FrameType.Welcome);
  });
  ws.on('pong', () => {
    heard = true;
    awaitingPong = false;
  });
  ws.on('error', () => settle(false));
  ws.on('close', () => {
    if (wasOpen) closed++;
    settle(false);
  });
}

function next(): void {
  while (started < count && started - settled < concurrency) connect(started++);
  if (settled === count) console.log(`OPEN ${established} ${failed}`);
}

createInterface({ input: process.stdin })
  .on('line', line => {
    if (line.trim() === 'STATUS') console.log(`STATUS ${open - closed} ${closed} ${unanswered}`);
  })
  .on('close', () => process.exit(0));

next();
