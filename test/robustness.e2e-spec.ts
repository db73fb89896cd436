/**
 * Pins the failures found in review of the core: nodes crashed by payload
 * bytes they could not decode, a close reason over 123 bytes for multibyte
 * node ids, duplicate WAIT ids, oversized patterns, close()/connect() races,
 * and calls left hanging when the relay never answers.
 */
import { Controller } from '@nestjs/common';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { CloseCode, decodePayload, type Frame, FrameCodec, FrameType, RelayErrorCode, ResponseFlag } from '@wsrelay/protocol';
import { WsRelayClient, WsRelayRecordBuilder } from '@wsrelay/transport';
import { firstValueFrom } from 'rxjs';
import { WebSocketServer } from 'ws';
import { encode } from '@msgpack/msgpack';
import type { AddressInfo } from 'node:net';
import { helloFrame, RawNode } from './support/raw-node.js';
import { type RunningRelay, startClient, startProvider, startRelay, until, rejection } from './support/harness.js';

const received: unknown[] = [];

@Controller()
class SturdyController {
  @MessagePattern('echo')
  echo(@Payload() v: unknown) {
    return v;
  }

  @EventPattern('news')
  news(@Payload() v: unknown) {
    received.push(v);
  }
}

const NOT_MSGPACK = new Uint8Array([0xc1]);

describe('robustness', () => {
  let relay: RunningRelay;

  beforeAll(async () => {
    relay = await startRelay();
  });

  afterAll(async () => {
    await relay.close();
  });

  it('a provider survives an event whose payload is not MessagePack, and handles the next one', async () => {
    const provider = await startProvider([SturdyController], { urls: [relay.url] });
    const emitter = await RawNode.hello(relay.url);
    emitter.send({ type: FrameType.Event, id: 1, pattern: 'news', payload: NOT_MSGPACK, peer: null, ext: null, claims: null });
    await emitter.next(f => f.type === FrameType.Ack);
    emitter.send({ type: FrameType.Event, id: 2, pattern: 'news', payload: encode('good'), peer: null, ext: NOT_MSGPACK, claims: null });
    await emitter.next(f => f.type === FrameType.Ack);
    emitter.send({ type: FrameType.Event, id: 3, pattern: 'news', payload: encode('fine'), peer: null, ext: null, claims: null });
    await emitter.next(f => f.type === FrameType.Ack);
    await until(() => received.includes('fine'), 5000, 'the good event');
    expect(received).toEqual(['fine']);
    emitter.close();
    await provider.close();
  });

  it('a provider answers a request whose payload is not MessagePack with an error, not silence', async () => {
    const provider = await startProvider([SturdyController], { urls: [relay.url] });
    const caller = await RawNode.hello(relay.url);
    caller.send({
      type: FrameType.Request,
      id: 5,
      pattern: 'echo',
      payload: NOT_MSGPACK,
      timeoutMs: 5000,
      peer: null,
      ext: null,
      claims: null,
    });
    const f = (await caller.next(x => x.type === FrameType.Response)) as Extract<Frame, { type: FrameType.Response }>;
    expect(f.flags & ResponseFlag.ERROR).toBeTruthy();
    expect(decodePayload(f.payload as Uint8Array)).toEqual({
      status: 'error',
      message: 'The request could not be decoded',
    });
    caller.close();
    await provider.close();
  });

  it('a client survives a response whose payload is not MessagePack and gets BAD_FRAME', async () => {
    const fakeProvider = await RawNode.hello(relay.url, 'liar', { patterns: ['lie'] });
    const client = await startClient({ urls: [relay.url] });
    const call = rejection(firstValueFrom(client.send('lie', 1)));
    const req = await fakeProvider.next(f => f.type === FrameType.Request);
    fakeProvider.send({ type: FrameType.Response, id: (req as { id: number }).id, flags: 0, payload: NOT_MSGPACK });
    expect(await call).toMatchObject({ code: RelayErrorCode.BAD_FRAME });
    // the stream was not done: the client cancelled it at the provider
    await fakeProvider.next(f => f.type === FrameType.Cancel);
    await client.close();
    fakeProvider.close();
  });

  it('closes a conflicting connection with 4409 even for a long multibyte node id', async () => {
    const nodeId = 'ノード'.repeat(40);
    const first = await RawNode.hello(relay.url, nodeId);
    const second = await RawNode.open(relay.url);
    second.send(helloFrame(nodeId));
    const closed = await second.closed();
    expect(closed.code).toBe(CloseCode.NODE_ID_CONFLICT);
    expect(Buffer.byteLength(closed.reason)).toBeLessThanOrEqual(123);
    first.close();
  });

  it('refuses a WAIT whose id is already waiting', async () => {
    const node = await RawNode.hello(relay.url);
    node.send({ type: FrameType.Wait, id: 4, pattern: 'never', timeoutMs: 60_000 });
    node.send({ type: FrameType.Wait, id: 4, pattern: 'never', timeoutMs: 60_000 });
    expect(await node.next(f => f.type === FrameType.Error)).toMatchObject({ id: 4, code: RelayErrorCode.BAD_FRAME });
    node.close();
  });

  it('fails a call with an oversized pattern at once with BAD_FRAME', async () => {
    const client = await startClient({ urls: [relay.url] });
    const err = await rejection(firstValueFrom(client.send('p'.repeat(5000), 1)));
    expect(err).toMatchObject({ code: RelayErrorCode.BAD_FRAME });
    await client.close();
  });

  it('connects again right after close(), awaited or not', async () => {
    const provider = await startProvider([SturdyController], { urls: [relay.url] });
    const client = new WsRelayClient({ urls: [relay.url], nodeId: 'again', connectTimeoutMs: 3000 });
    await client.connect();
    await client.close();
    await client.connect();
    expect(await firstValueFrom(client.send('echo', 1))).toBe(1);
    void client.close();
    await client.connect();
    expect(await firstValueFrom(client.send('echo', 2))).toBe(2);
    await client.close();
    await provider.close();
  });

  it('takes a relay that stops answering pings for dead and reconnects', async () => {
    // A "relay" that welcomes nodes and then goes silent, pongs included.
    const codec = new FrameCodec();
    const mute = new WebSocketServer({ host: '127.0.0.1', port: 0, autoPong: false });
    await new Promise(r => mute.once('listening', r));
    let connections = 0;
    mute.on('connection', ws => {
      connections++;
      ws.on('message', (data: Buffer) => {
        const f = codec.decode(data);
        if (f.type === FrameType.Hello) {
          ws.send(
            codec.encode({
              type: FrameType.Welcome,
              version: 1,
              relayId: 'r',
              sessionId: 's',
              nodeId: f.nodeId,
              maxPayloadBytes: 1 << 20,
              heartbeatIntervalMs: 10_000,
            }),
          );
        }
      });
    });
    const port = (mute.address() as AddressInfo).port;
    const client = await startClient({ urls: [`ws://127.0.0.1:${port}/`], heartbeatIntervalMs: 50 });
    const events: string[] = [];
    client.on('disconnected', () => events.push('disconnected'));
    await until(() => events.includes('disconnected') && connections >= 2, 5000, 'a dead-relay reconnect');
    await client.close();
    for (const ws of mute.clients) ws.terminate();
    await new Promise(r => mute.close(r));
  });

  it('gives up on its own with TIMEOUT when the relay never answers', async () => {
    // A "relay" that completes the handshake and then ignores every request.
    const codec = new FrameCodec();
    const silent = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise(r => silent.once('listening', r));
    silent.on('connection', ws =>
      ws.on('message', (data: Buffer) => {
        const f = codec.decode(data);
        if (f.type === FrameType.Hello) {
          ws.send(
            codec.encode({
              type: FrameType.Welcome,
              version: 1,
              relayId: 'r',
              sessionId: 's',
              nodeId: f.nodeId,
              maxPayloadBytes: 1 << 20,
              heartbeatIntervalMs: 10_000,
            }),
          );
        }
      }),
    );
    const port = (silent.address() as AddressInfo).port;
    const client = await startClient({ urls: [`ws://127.0.0.1:${port}/`] });
    const record = new WsRelayRecordBuilder(1).setTimeout(100).build();
    expect(await rejection(firstValueFrom(client.send('anything', record)))).toMatchObject({ code: RelayErrorCode.TIMEOUT });
    await client.close();
    await new Promise(r => silent.close(r));
  });
});
