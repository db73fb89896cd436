/**
 * Client claims of the README that no other spec pins, each on real relays,
 * real microservices and real sockets:
 * - mode 'all': a client sends through every connected relay in turn;
 * - `maxBufferedBytes`: once that many bytes wait unsent to the relay, new
 *   calls and emits fail at once with RATE_LIMITED (in 'all' mode a backed-up
 *   connection is passed over instead while another can take the call);
 * - the 30 s default deadline travels with each call on the wire and reaches
 *   the handler's context.
 */
import { Controller, Inject } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { decodePayload, FrameType, RelayErrorCode, type RequestFrame, ResponseFlag, encodePayload } from '@wsrelay/protocol';
import { RelayError, type WsRelayClient, WsRelayContext } from '@wsrelay/transport';
import { firstValueFrom } from 'rxjs';
import { startClient, startProvider, startRelay, until, useCleanup } from './support/harness.js';
import { RawNode } from './support/raw-node.js';
import { CutOffProxy } from './support/redis.js';

const NODE = Symbol('node');
/** What the handlers saw, in order. */
const seen: Array<{ node: string; what: string; deadline?: number }> = [];

@Controller()
class EchoController {
  constructor(@Inject(NODE) private readonly node: string) {}

  @MessagePattern('who')
  who(@Ctx() ctx: WsRelayContext) {
    seen.push({ node: this.node, what: 'who', deadline: ctx.getDeadline() });
    return this.node;
  }

  @MessagePattern('size')
  size(@Payload() data: string) {
    return data.length;
  }

  @EventPattern<string>('ping.*')
  ping(@Ctx() ctx: WsRelayContext) {
    seen.push({ node: this.node, what: ctx.getPattern() });
  }
}

const node = (nodeId: string) => [{ provide: NODE, useValue: nodeId }];

describe('client claims', () => {
  const { add, track } = useCleanup();
  afterEach(() => {
    seen.length = 0;
  });

  /** A relay behind a TCP proxy the test can freeze (the relay then reads nothing more from the client). */
  async function frozenRelayPath(): Promise<{ relayUrl: string; proxiedUrl: string; proxy: CutOffProxy }> {
    const relay = track(await startRelay());
    const proxy = track(await CutOffProxy.start(relay.url));
    return { relayUrl: relay.url, proxiedUrl: `ws://127.0.0.1:${proxy.port}/relay`, proxy };
  }

  /**
   * Sends `payload` to 'size', one call per turn of the event loop (so what
   * the socket can take leaves it), until a call fails synchronously (at
   * once, nothing written) or `max` went out: the refusal, if any, and the calls accepted.
   */
  async function sendPerTurn(client: WsRelayClient, payload: string, max: number) {
    const accepted: Array<Promise<number>> = [];
    for (let i = 0; i < max; i++) {
      let refused: unknown;
      let synchronous = true;
      const call = new Promise<number>((resolve, reject) => {
        client
          .send<number>('size', payload)
          .subscribe({ next: resolve, error: (err: Error) => (synchronous ? (refused = err) : reject(err)) });
      });
      synchronous = false;
      if (refused !== undefined) return { refused, accepted };
      accepted.push(call);
      await new Promise(resolve => setImmediate(resolve));
    }
    return { refused: undefined, accepted };
  }

  /** Bytes waiting unsent on the client's first connected session. */
  const unsent = (client: WsRelayClient) => client.unwrap<{ bufferedAmount: number }>().bufferedAmount;

  it("mode 'all': calls and emits go out through each connected relay in turn", async () => {
    const a = track(await startRelay());
    const b = track(await startRelay());
    track(await startProvider([EchoController], { urls: [a.url], nodeId: 'on-a' }, node('on-a')));
    track(await startProvider([EchoController], { urls: [b.url], nodeId: 'on-b' }, node('on-b')));
    const client = track(await startClient({ urls: [a.url, b.url], mode: 'all' }));
    await until(() => Object.values(client.relayStatus()).every(s => s === 'connected'), 5000, 'the client on both relays');
    // Independent relays: each call reaches only the provider on the relay it went through.
    const answers: string[] = [];
    for (let i = 0; i < 6; i++) answers.push(await firstValueFrom(client.send<string>('who', i)));
    expect(answers.filter(n => n === 'on-a')).toHaveLength(3);
    for (let i = 1; i < answers.length; i++) expect(answers[i]).not.toBe(answers[i - 1]);
    // Events take the same turns: each reaches one relay's subscriber, alternately.
    seen.length = 0;
    for (let i = 0; i < 4; i++) expect(await firstValueFrom(client.emit('ping.x', i))).toEqual({ recipients: 1 });
    await until(() => seen.length === 4, 5000, 'four events handled');
    const order = seen.map(s => s.node);
    expect(order.filter(n => n === 'on-a')).toHaveLength(2);
    for (let i = 1; i < order.length; i++) expect(order[i]).not.toBe(order[i - 1]);
  });

  it('maxBufferedBytes: past it, new calls and emits fail at once with RATE_LIMITED; once the relay reads again, all is served', async () => {
    const budget = 64 * 1024;
    const { relayUrl, proxiedUrl, proxy } = await frozenRelayPath();
    track(await startProvider([EchoController], { urls: [relayUrl], nodeId: 'sizer' }, node('sizer')));
    const client = track(await startClient({ urls: [proxiedUrl], maxBufferedBytes: budget }));
    await client.waitFor('size');
    const payload = 'x'.repeat(16 * 1024);
    // While the relay reads, 64 calls (1 MiB, sixteen budgets) go out without a refusal.
    const reading = await sendPerTurn(client, payload, 64);
    expect(reading.refused).toBeUndefined();
    expect(await Promise.all(reading.accepted)).toEqual(reading.accepted.map(() => payload.length));
    proxy.freeze();
    const { refused, accepted } = await sendPerTurn(client, payload, 4000);
    // Refused only once more than the budget waits unsent (the kernel's socket buffers took a lot first).
    expect(accepted.length).toBeGreaterThan(budget / payload.length);
    expect(unsent(client)).toBeGreaterThan(budget);
    expect(refused).toBeInstanceOf(RelayError);
    expect(refused).toMatchObject({ code: RelayErrorCode.RATE_LIMITED, status: 429 });
    expect((refused as Error).message).toMatch(new RegExp(`waiting to be sent to the relay \\(over ${budget}\\)`));
    await expect(firstValueFrom(client.emit('ping.x', 1))).rejects.toMatchObject({ code: RelayErrorCode.RATE_LIMITED });
    await expect(client.discover()).rejects.toMatchObject({ code: RelayErrorCode.RATE_LIMITED });
    // Nothing accepted was lost: once the relay reads again every call is answered, and new ones go out.
    await proxy.restore();
    expect(await Promise.all(accepted)).toEqual(accepted.map(() => payload.length));
    expect(await firstValueFrom(client.send('size', 'abc'))).toBe(3);
  });

  it("maxBufferedBytes in mode 'all': a backed-up relay connection is passed over while another connected one takes the calls", async () => {
    const budget = 64 * 1024;
    const frozen = await frozenRelayPath();
    const open = track(await startRelay());
    track(await startProvider([EchoController], { urls: [frozen.relayUrl], nodeId: 'behind-proxy' }, node('behind-proxy')));
    track(await startProvider([EchoController], { urls: [open.url], nodeId: 'open' }, node('open')));
    const client = track(await startClient({ urls: [frozen.proxiedUrl, open.url], mode: 'all', maxBufferedBytes: budget }));
    await until(() => Object.values(client.relayStatus()).every(s => s === 'connected'), 5000, 'the client on both relays');
    frozen.proxy.freeze();
    const payload = 'y'.repeat(16 * 1024);
    // Calls, one per turn of the event loop, alternate between the two until the frozen session
    // (the first: what unwrap() gives) holds more than the budget; none is refused.
    const calls: Array<Promise<number>> = [];
    while (unsent(client) <= budget && calls.length < 4000) {
      calls.push(firstValueFrom(client.send<number>('size', payload)));
      await new Promise(resolve => setImmediate(resolve));
    }
    expect(unsent(client)).toBeGreaterThan(budget);
    // From then on every call goes through the open relay, none is refused.
    const whileFrozen = await Promise.all(Array.from({ length: 6 }, (_, i) => firstValueFrom(client.send<string>('who', i))));
    expect(whileFrozen).toEqual(Array.from({ length: 6 }, () => 'open'));
    await frozen.proxy.restore();
    expect(await Promise.all(calls)).toEqual(calls.map(() => payload.length));
  });

  it('a call made without a timeout carries the 30 s default deadline on the wire and in the handler context', async () => {
    const relay = track(await startRelay());
    const raw = await RawNode.hello(relay.url, 'raw-provider', { patterns: ['deadline'] });
    add(() => raw.close());
    track(await startProvider([EchoController], { urls: [relay.url], nodeId: 'ctx' }, node('ctx')));
    const client = track(await startClient({ urls: [relay.url] }));
    const call = firstValueFrom(client.send('deadline', 'd'));
    const req = (await raw.next(f => f.type === FrameType.Request)) as RequestFrame;
    expect(req.timeoutMs).toBe(30_000);
    expect(decodePayload(req.payload)).toBe('d');
    raw.send({ type: FrameType.Response, id: req.id, flags: ResponseFlag.DONE, payload: encodePayload('ok') });
    expect(await call).toBe('ok');
    // A Nest handler sees the same deadline: about 30 000 ms after the call.
    const before = Date.now();
    expect(await firstValueFrom(client.send('who', 1))).toBe('ctx');
    const after = Date.now();
    const { deadline } = seen.find(s => s.what === 'who')!;
    expect(deadline).toBeGreaterThanOrEqual(before + 30_000 - 50);
    expect(deadline).toBeLessThanOrEqual(after + 30_000);
    // The option, when set, replaces the default on the wire.
    const short = track(await startClient({ urls: [relay.url], timeoutMs: 1234 }));
    const shortCall = firstValueFrom(short.send('deadline', 'e'));
    const shortReq = (await raw.next(f => f.type === FrameType.Request)) as RequestFrame;
    expect(shortReq.timeoutMs).toBe(1234);
    raw.send({ type: FrameType.Response, id: shortReq.id, flags: ResponseFlag.DONE, payload: encodePayload('ok') });
    expect(await shortCall).toBe('ok');
  });
});
