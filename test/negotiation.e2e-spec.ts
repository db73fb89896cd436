/**
 * Capability negotiation and credit at the wire: the relay answers HELLO
 * with the capabilities both sides speak, passes a caller's stream window
 * and CREDIT only to a provider that speaks flow control, and holds such a
 * provider to its credit. A client refuses a relay that picks a protocol
 * version it never offered, and sends no CREDIT to a relay that did not
 * agree on it. Raw nodes speak the protocol by hand; the "relays" of the
 * client tests are bare WebSocket servers answering as a newer or an older
 * relay would.
 */
import { describe, expect, it } from '@jest/globals';
import {
  Capability,
  decodePayload,
  encodePayload,
  type Frame,
  FrameCodec,
  FrameType,
  type RelayError,
  RelayErrorCode,
  type RequestFrame,
  ResponseFlag,
  SUPPORTED_CAPABILITIES,
} from '@wsrelay/protocol';
import type { AddressInfo } from 'node:net';
import { firstValueFrom, toArray } from 'rxjs';
import { WebSocketServer } from 'ws';
import { answerTo, isRequest, request } from './support/frames.js';
import { rejection, startClient, startRelay, useCleanup } from './support/harness.js';
import { RawNode } from './support/raw-node.js';
import { WsRelayClient } from '@wsrelay/transport';

const value = (id: number, i: number, flags = 0): Frame => ({ type: FrameType.Response, id, flags, payload: encodePayload(i) });
const isCredit = (f: Frame) => f.type === FrameType.Credit;

/** A fake relay's answers: 'stream' gets twelve values (the last with DONE), anything else 'pong'. */
function streamOrPong(r: RequestFrame, send: (f: Frame) => void): void {
  if (r.pattern !== 'stream') return send({ type: FrameType.Response, id: r.id, flags: ResponseFlag.DONE, payload: encodePayload('pong') });
  for (let i = 0; i < 12; i++)
    send({ type: FrameType.Response, id: r.id, flags: i === 11 ? ResponseFlag.DONE : 0, payload: encodePayload(i) });
}

/** A bare WebSocket server answering HELLO with `welcome(hello)`, and each REQUEST with `answer`; it keeps every frame it gets. */
async function fakeRelay(
  welcomeVersion: number,
  caps: string[] | undefined,
  answer: (r: RequestFrame, send: (f: Frame) => void) => void = () => undefined,
) {
  const codec = new FrameCodec();
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>(resolve => server.once('listening', resolve));
  const received: Frame[] = [];
  let connections = 0;
  server.on('connection', socket => {
    connections++;
    const send = (f: Frame) => socket.send(codec.encode(f));
    socket.on('message', (data: Buffer) => {
      const frame = codec.decode(data);
      received.push(frame);
      if (frame.type === FrameType.Hello) {
        const base = { relayId: 'fake', sessionId: 's', nodeId: frame.nodeId, maxPayloadBytes: 1 << 20, heartbeatIntervalMs: 10_000 };
        send({ type: FrameType.Welcome, version: welcomeVersion, ...base, caps });
      } else if (frame.type === FrameType.Request) answer(frame, send);
    });
  });
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/relay`,
    received,
    connections: () => connections,
    close: () => new Promise<void>(resolve => server.close(() => resolve())),
  };
}

describe('capability negotiation and credit on the wire', () => {
  const { track, add } = useCleanup();

  async function pair(providerCaps: string[] | undefined) {
    const relay = track(await startRelay());
    const provider = await RawNode.hello(relay.url, 'provider', { patterns: ['s'], caps: providerCaps });
    const caller = await RawNode.hello(relay.url, 'caller', { caps: [Capability.CREDIT] });
    add(
      () => provider.close(),
      () => caller.close(),
    );
    return { provider, caller, relay };
  }

  it('WELCOME lists the capabilities both speak (unknown ones left out), and none for a node that offered none', async () => {
    const { provider, caller } = await pair([Capability.CREDIT, 'x-from-the-future']);
    expect(provider.welcome?.caps).toEqual([Capability.CREDIT]);
    expect(caller.welcome?.caps).toEqual([...SUPPORTED_CAPABILITIES]);
    const old = await pair(undefined);
    expect(old.provider.welcome).toBeDefined();
    expect(old.provider.welcome?.caps).toBeUndefined();
  });

  it("the window and each CREDIT reach a provider that speaks flow control, under the relay's id", async () => {
    const { provider, caller } = await pair([Capability.CREDIT]);
    caller.send({ ...request(1, 's'), window: 2 });
    const delivered = (await provider.next(isRequest)) as RequestFrame;
    expect(delivered.window).toBe(2);
    caller.send({ type: FrameType.Credit, id: 1, credit: 3 });
    expect(await provider.next(isCredit)).toEqual({ type: FrameType.Credit, id: delivered.id, credit: 3 });
    // Five values: the window and the credit, then the completion.
    for (let i = 0; i < 5; i++) provider.send(value(delivered.id, i, i === 4 ? ResponseFlag.DONE : 0));
    const got: unknown[] = [];
    for (let i = 0; i < 5; i++) got.push(decodePayload(((await caller.next(answerTo(1))) as { payload: Uint8Array }).payload));
    expect(got).toEqual([0, 1, 2, 3, 4]);
  });

  it('a provider that sends past its credit has its stream stopped: the caller gets SLOW_CONSUMER, the provider CANCEL', async () => {
    const { provider, caller } = await pair([Capability.CREDIT]);
    caller.send({ ...request(1, 's'), window: 2 });
    const delivered = (await provider.next(isRequest)) as RequestFrame;
    for (let i = 0; i < 3; i++) provider.send(value(delivered.id, i));
    expect(await caller.next(answerTo(1))).toMatchObject({ type: FrameType.Response, flags: 0 });
    expect(await caller.next(answerTo(1))).toMatchObject({ type: FrameType.Response, flags: 0 });
    const refused = await caller.next(answerTo(1));
    expect(refused).toMatchObject({ type: FrameType.Error, code: RelayErrorCode.SLOW_CONSUMER });
    expect((refused as { message: string }).message).toBe(
      'The stream of "s" was stopped: its provider sent more values than the caller had granted credit for.',
    );
    expect(await provider.next(f => f.type === FrameType.Cancel)).toEqual({ type: FrameType.Cancel, id: delivered.id });
  });

  it('a window from a caller that did not agree on flow control is not passed on (it would never send CREDIT)', async () => {
    const { provider, relay } = await pair([Capability.CREDIT]);
    const old = await RawNode.hello(relay.url, 'old-caller');
    add(() => old.close());
    old.send({ ...request(1, 's'), window: 1 });
    const delivered = (await provider.next(isRequest)) as RequestFrame;
    expect(delivered.window).toBeUndefined();
    for (let i = 0; i < 3; i++) provider.send(value(delivered.id, i, i === 2 ? ResponseFlag.DONE : 0));
    for (let i = 0; i < 3; i++) expect(await old.next(answerTo(1))).toMatchObject({ type: FrameType.Response });
  });

  it('a provider that does not speak flow control gets no window and no CREDIT, and is not held to one', async () => {
    const { provider, caller } = await pair(undefined);
    caller.send({ ...request(1, 's'), window: 2 });
    const first = (await provider.next(isRequest)) as RequestFrame;
    expect(first.window).toBeUndefined();
    caller.send({ type: FrameType.Credit, id: 1, credit: 3 });
    caller.send(request(2, 's'));
    await provider.next(isRequest);
    // Frames keep their order on a connection: a CREDIT passed on would have come before the second REQUEST.
    expect(provider.frames.filter(isCredit)).toEqual([]);
    for (let i = 0; i < 5; i++) provider.send(value(first.id, i, i === 4 ? ResponseFlag.DONE : 0));
    for (let i = 0; i < 5; i++) expect(await caller.next(answerTo(1))).toMatchObject({ type: FrameType.Response });
  });

  it('a client refuses a relay that chose a protocol version it never offered (PROTOCOL_MISMATCH, not a retry loop)', async () => {
    const fake = await fakeRelay(99, undefined);
    add(() => fake.close());
    const client = new WsRelayClient({ urls: [fake.url], connectTimeoutMs: 60_000 });
    add(() => client.close());
    const err = (await rejection(client.connect())) as RelayError;
    expect(err.code).toBe(RelayErrorCode.PROTOCOL_MISMATCH);
    expect(err.message).toBe('The relay chose protocol version 99, which this node does not speak (it speaks 1).');
    expect(fake.connections()).toBe(1);
  });

  it('a client offers its capabilities, and sends no CREDIT to a relay that did not agree on flow control', async () => {
    const fake = await fakeRelay(1, undefined, streamOrPong);
    add(() => fake.close());
    const client = track(await startClient({ urls: [fake.url], streamWindow: 4 }));
    expect(await firstValueFrom(client.send<number>('stream', 0).pipe(toArray()))).toEqual([...Array(12).keys()]);
    expect(await firstValueFrom(client.send<string>('ping', 0))).toBe('pong');
    expect(fake.received.find(f => f.type === FrameType.Hello)).toMatchObject({ caps: [...SUPPORTED_CAPABILITIES] });
    // No window either: such a relay would not pass it on.
    expect(fake.received.find(f => f.type === FrameType.Request)).not.toHaveProperty('window');
    expect(fake.received.filter(isCredit)).toEqual([]);
  });

  it('with a relay that agreed on it, the client grants credit half a window at a time', async () => {
    const fake = await fakeRelay(1, [Capability.CREDIT], streamOrPong);
    add(() => fake.close());
    const client = track(await startClient({ urls: [fake.url], streamWindow: 4 }));
    expect(await firstValueFrom(client.send<number>('stream', 0).pipe(toArray()))).toEqual([...Array(12).keys()]);
    // Frames keep their order: the relay has every CREDIT once it has the next REQUEST.
    expect(await firstValueFrom(client.send<string>('ping', 0))).toBe('pong');
    // Values 2, 4, ..., 10 each complete half a window; the last value ends the call and earns none.
    const request = fake.received.find(isRequest) as RequestFrame;
    expect(request.window).toBe(4);
    expect(fake.received.filter(isCredit)).toEqual(Array(5).fill({ type: FrameType.Credit, id: request.id, credit: 2 }));
  });
});
