/**
 * The raw-ws provider (bench peer, see raw-protocol.ts). ROLE=provider
 * answers `<prefix>echo` (the payload is decoded and the reply encoded, as a
 * handler would) and counts `<prefix>events`; ROLE=subscriber counts
 * `<prefix>fanout`. Answers "COUNT" on stdin like bench/peers/provider.ts (marks.ts).
 *
 * RAW_URL, ROLE (provider), BENCH_PREFIX ('').
 */
import { Decoder, Encoder } from '@msgpack/msgpack';
import WebSocket from 'ws';
import { answerCounts, DeliveryLog } from './marks.js';
import { corkForTick, Raw } from './raw-protocol.js';

const prefix = process.env.BENCH_PREFIX ?? '';
const role = process.env.ROLE ?? 'provider';
const decoder = new Decoder();
const encoder = new Encoder();
const payloads = new Decoder();
const replies = new Encoder();
const delivered = new DeliveryLog();

const ws = new WebSocket(process.env.RAW_URL as string, { perMessageDeflate: false });
ws.on('open', () => {
  ws.send(encoder.encode(role === 'provider' ? [Raw.SUB, [`${prefix}echo`], [`${prefix}events`]] : [Raw.SUB, [], [`${prefix}fanout`]]));
  console.log('READY');
});
ws.on('message', (data: Buffer) => {
  const f = decoder.decode(data) as unknown[];
  if (f[0] === Raw.REQ) {
    const value = payloads.decode(f[3] as Uint8Array);
    corkForTick(ws);
    ws.send(encoder.encode([Raw.RES, f[1], replies.encode(value)]));
  } else if (f[0] === Raw.EVT) {
    payloads.decode(f[3] as Uint8Array);
    delivered.hit();
  }
});
ws.on('error', err => {
  console.error(err.message);
  process.exit(1);
});
ws.on('close', () => process.exit(0));

answerCounts(delivered);
process.on('SIGTERM', () => process.exit(0));
