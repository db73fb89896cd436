/**
 * Bad input reaches a live relay over raw sockets: each bad frame gets a typed
 * ERROR (BAD_FRAME, PAYLOAD_TOO_LARGE, PROTOCOL_MISMATCH, NODE_ID_CONFLICT),
 * the sender keeps its connection where the frame could be read, and other
 * connections carry on.
 */
import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { encode } from '@msgpack/msgpack';
import { CloseCode, type ErrorFrame, type Frame, FrameType, RelayErrorCode } from '@wsrelay/protocol';
import { RelayCore } from '@wsrelay/relay';
import type { WsRelayClient } from '@wsrelay/transport';
import { firstValueFrom } from 'rxjs';
import WebSocket from 'ws';
import { helloFrame, RawNode } from './support/raw-node.js';
import { type RunningProvider, type RunningRelay, startClient, startProvider, startRelay, until } from './support/harness.js';

@Controller()
class EchoController {
  @MessagePattern('echo')
  echo(@Payload() v: unknown) {
    return v;
  }
}

const isError = (f: Frame): f is ErrorFrame => f.type === FrameType.Error;

describe('hostile input', () => {
  let relay: RunningRelay;
  let provider: RunningProvider;
  let client: WsRelayClient;

  beforeAll(async () => {
    relay = await startRelay({ maxPayloadBytes: 4096, maxBadFrames: 20 });
    provider = await startProvider([EchoController], { urls: [relay.url], nodeId: 'echo-1' });
    client = await startClient({ urls: [relay.url] });
  });

  afterAll(async () => {
    await client.close();
    await provider.close();
    await relay.close();
  });

  async function expectError(node: RawNode, code: RelayErrorCode, id?: number): Promise<ErrorFrame> {
    const f = (await node.next(isError)) as ErrorFrame;
    expect(f).toMatchObject(id === undefined ? { code } : { code, id });
    return f;
  }

  it('answers garbage with BAD_FRAME while other traffic continues', async () => {
    const node = await RawNode.hello(relay.url);
    const traffic = Promise.all(Array.from({ length: 200 }, (_, i) => firstValueFrom(client.send('echo', i))));
    const garbage: Array<Uint8Array | string> = [
      new Uint8Array([0xc1]), // never-used MessagePack byte
      new Uint8Array([0x93, 0x01]), // truncated array
      encode('not an array'),
      encode([]),
      encode([99, 1]),
      encode([FrameType.Request, 'x']),
      new Uint8Array([...encode([FrameType.Ping]), 0x00]), // garbage after a valid frame
      'a text frame',
    ];
    for (const g of garbage) node.sendRaw(g);
    const reasons: string[] = [];
    for (let i = 0; i < garbage.length; i++) reasons.push((await expectError(node, RelayErrorCode.BAD_FRAME)).message);
    expect(reasons.join('\n')).toMatch(/malformed or over-limit MessagePack/);
    expect(reasons.join('\n')).toMatch(/non-empty MessagePack array/);
    expect(reasons.join('\n')).toMatch(/unknown frame type 99/);
    expect(reasons.join('\n')).toMatch(/text frames are not part of the protocol/);
    expect(await traffic).toEqual(Array.from({ length: 200 }, (_, i) => i));
    // the connection is still usable
    node.send({ type: FrameType.Ping });
    await node.next(f => f.type === FrameType.Pong);
    node.close();
  });

  it('correlates a bad field to its request id and names the field', async () => {
    const node = await RawNode.hello(relay.url);
    node.sendRaw(encode([FrameType.Request, 7, 42, new Uint8Array([0xc0]), 1000]));
    const f = await expectError(node, RelayErrorCode.BAD_FRAME, 7);
    expect(f.message).toContain('request.pattern');
    node.close();
  });

  it('refuses frames before HELLO and frames that only the relay sends', async () => {
    const node = await RawNode.open(relay.url);
    node.send({
      type: FrameType.Request,
      id: 3,
      pattern: 'echo',
      payload: encode(1),
      timeoutMs: 1000,
      peer: null,
      ext: null,
      claims: null,
    });
    expect((await expectError(node, RelayErrorCode.BAD_FRAME, 3)).message).toContain('HELLO must be the first frame');
    node.send({ type: FrameType.Ack, id: 4, recipients: 1 });
    expect((await expectError(node, RelayErrorCode.BAD_FRAME, 4)).message).toContain('never sent to the relay');
    node.close();
  });

  it('answers a frame over maxPayloadBytes with PAYLOAD_TOO_LARGE and keeps the connection', async () => {
    const node = await RawNode.hello(relay.url);
    node.send({
      type: FrameType.Request,
      id: 9,
      pattern: 'echo',
      payload: encode('x'.repeat(5000)),
      timeoutMs: 1000,
      peer: null,
      ext: null,
      claims: null,
    });
    const f = await expectError(node, RelayErrorCode.PAYLOAD_TOO_LARGE, 9);
    expect(f.message).toMatch(/over the relay's limit of 4096 bytes/);
    node.send({
      type: FrameType.Request,
      id: 10,
      pattern: 'echo',
      payload: encode('small'),
      timeoutMs: 1000,
      peer: null,
      ext: null,
      claims: null,
    });
    expect(await node.next(x => x.type === FrameType.Response)).toMatchObject({ id: 10, flags: 1 });
    node.close();
  });

  it('closes the connection (1009) for a frame over twice the limit', async () => {
    const node = await RawNode.hello(relay.url);
    node.sendRaw(new Uint8Array(9000));
    expect((await node.closed()).code).toBe(1009);
  });

  it('refuses an unsupported protocol version with PROTOCOL_MISMATCH and a close reason naming the versions', async () => {
    const node = await RawNode.open(relay.url);
    node.send(helloFrame('future', { versions: [99] }));
    const f = await expectError(node, RelayErrorCode.PROTOCOL_MISMATCH, 0);
    expect(f.message).toContain('speaks 1');
    const closed = await node.closed();
    expect(closed.code).toBe(CloseCode.PROTOCOL_MISMATCH);
    expect(closed.reason).toContain('speaks 1');
  });

  it('refuses a node id already held by a live connection', async () => {
    const node = await RawNode.open(relay.url);
    node.send(helloFrame('echo-1', { patterns: ['echo'] }));
    await expectError(node, RelayErrorCode.NODE_ID_CONFLICT, 0);
    expect((await node.closed()).code).toBe(CloseCode.NODE_ID_CONFLICT);
    expect(await firstValueFrom(client.send('echo', 'still routed to the original'))).toBe('still routed to the original');
  });

  it('drops a response from a connection the request was not routed to', async () => {
    const spoofer = await RawNode.hello(relay.url);
    const router = relay.app.get(RelayCore);
    const before = router.diagnostics().droppedFrames;
    for (let id = 1; id <= 5; id++) spoofer.send({ type: FrameType.Response, id, flags: 1, payload: encode('spoofed') });
    spoofer.send({ type: FrameType.Ping });
    await spoofer.next(f => f.type === FrameType.Pong);
    expect(router.diagnostics().droppedFrames - before).toBe(5);
    expect(await firstValueFrom(client.send('echo', 'real'))).toBe('real');
    spoofer.close();
  });

  it('closes a connection that keeps sending bad frames', async () => {
    const node = await RawNode.hello(relay.url);
    for (let i = 0; i < 25; i++) node.sendRaw(new Uint8Array([0xc1]));
    const closed = await node.closed();
    expect(closed.code).toBe(CloseCode.BAD_FRAME);
  });

  it('closes a socket that never says HELLO', async () => {
    const strict = await startRelay({ handshakeTimeoutMs: 100 });
    const node = await RawNode.open(strict.url);
    expect((await node.closed()).code).toBe(CloseCode.HANDSHAKE_TIMEOUT);
    await strict.close();
  });

  it('disconnects a provider that stops answering pings and fails its in-flight requests', async () => {
    const fast = await startRelay({ heartbeatIntervalMs: 50 });
    const frozen = new WebSocket(fast.url, { autoPong: false });
    const node = await new Promise<RawNode>(resolve => frozen.once('open', () => resolve(RawNode.wrap(frozen))));
    node.send(helloFrame('frozen', { patterns: ['slow'] }));
    await node.next(f => f.type === FrameType.Welcome);
    const caller = await startClient({ urls: [fast.url] });
    const call = firstValueFrom(caller.send('slow', 1)).catch((err: unknown) => err);
    await node.next(f => f.type === FrameType.Request);
    expect(await call).toMatchObject({ code: RelayErrorCode.PROVIDER_DISCONNECTED });
    await node.closed();
    await caller.close();
    await fast.close();
  });

  it('keeps serving after all of the above', async () => {
    await until(() => relay.app.get(RelayCore).connectionCount >= 2, 5000, 'connections');
    expect(await firstValueFrom(client.send('echo', { ok: true }))).toEqual({ ok: true });
  });
});
