/**
 * The raw-ws relay (bench peer, see raw-protocol.ts): routes requests
 * round-robin to providers, responses back to callers, events to every
 * subscriber of the exact subject, and ACKs each event. Pings every socket
 * each RELAY_HEARTBEAT_INTERVAL_MS (default 10000) and drops one that missed
 * a pong, as our relay does.
 *
 * RAW_PORT (0 = any), RAW_HOST (127.0.0.1). Prints "Raw relay listening on ws://…".
 */
import { Decoder, Encoder } from '@msgpack/msgpack';
import { fstatSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { corkForTick, Raw } from './raw-protocol.js';

interface Peer {
  ws: WebSocket;
  alive: boolean;
}

interface Route {
  peers: Peer[];
  next: number;
}

interface Pending {
  caller: Peer;
  id: number;
}

const decoder = new Decoder();
const encoder = new Encoder();
const providers = new Map<string, Route>();
const subscribers = new Map<string, Peer[]>();
const pending = new Map<number, Pending>();
const peers = new Set<Peer>();
let lastRid = 0;

function send(peer: Peer, frame: unknown[]): void {
  if (peer.ws.readyState !== WebSocket.OPEN) return;
  corkForTick(peer.ws);
  peer.ws.send(encoder.encode(frame));
}

function onFrame(peer: Peer, data: Buffer): void {
  const f = decoder.decode(data) as unknown[];
  if (!Array.isArray(f)) return;
  switch (f[0]) {
    case Raw.REQ: {
      const route = providers.get(f[2] as string);
      if (route === undefined || route.peers.length === 0) return;
      const provider = route.peers[route.next++ % route.peers.length];
      lastRid = lastRid >= 0xffff_ffff ? 1 : lastRid + 1;
      pending.set(lastRid, { caller: peer, id: f[1] as number });
      send(provider, [Raw.REQ, lastRid, f[2], f[3]]);
      return;
    }
    case Raw.RES: {
      const p = pending.get(f[1] as number);
      if (p === undefined) return;
      pending.delete(f[1] as number);
      send(p.caller, [Raw.RES, p.id, f[2]]);
      return;
    }
    case Raw.EVT: {
      const subs = subscribers.get(f[2] as string) ?? [];
      if (subs.length > 0) {
        const bytes = encoder.encode([Raw.EVT, 0, f[2], f[3]]);
        for (const s of subs) {
          if (s.ws.readyState !== WebSocket.OPEN) continue;
          corkForTick(s.ws);
          s.ws.send(bytes);
        }
      }
      send(peer, [Raw.ACK, f[1], subs.length]);
      return;
    }
    case Raw.SUB: {
      for (const subject of f[1] as string[]) {
        let route = providers.get(subject);
        if (route === undefined) providers.set(subject, (route = { peers: [], next: 0 }));
        route.peers.push(peer);
      }
      for (const subject of f[2] as string[]) {
        let list = subscribers.get(subject);
        if (list === undefined) subscribers.set(subject, (list = []));
        list.push(peer);
      }
      return;
    }
  }
}

function forget(peer: Peer): void {
  peers.delete(peer);
  for (const route of providers.values()) route.peers = route.peers.filter(p => p !== peer);
  for (const [subject, list] of subscribers)
    subscribers.set(
      subject,
      list.filter(p => p !== peer),
    );
}

const heartbeatMs = Number(process.env.RELAY_HEARTBEAT_INTERVAL_MS ?? 10_000);
const server = new WebSocketServer({
  host: process.env.RAW_HOST ?? '127.0.0.1',
  port: Number(process.env.RAW_PORT ?? 0),
  perMessageDeflate: false,
  maxPayload: 2 * 1024 * 1024,
  clientTracking: false,
});

server.on('connection', ws => {
  const peer: Peer = { ws, alive: true };
  peers.add(peer);
  ws.on('message', (data: Buffer) => {
    peer.alive = true;
    try {
      onFrame(peer, data);
    } catch (err) {
      console.error(`bad frame: ${(err as Error).message}`);
    }
  });
  ws.on('pong', () => (peer.alive = true));
  ws.on('close', () => forget(peer));
  ws.on('error', () => undefined);
});

server.on('listening', () => {
  const { port } = server.address() as AddressInfo;
  console.log(`Raw relay listening on ws://127.0.0.1:${port}`);
});

setInterval(() => {
  for (const peer of peers) {
    if (!peer.alive) {
      peer.ws.terminate();
      continue;
    }
    peer.alive = false;
    peer.ws.ping();
  }
}, heartbeatMs);

if (fstatSync(0).isFIFO()) {
  // Started by the bench: leave with it.
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}
process.on('SIGTERM', () => process.exit(0));
