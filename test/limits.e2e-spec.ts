/**
 * Every relay limit against a live relay, over real sockets: the connection
 * cap (HTTP 503 at the upgrade), the per-connection rate limit (reading paused,
 * nothing refused), the in-flight cap (RATE_LIMITED, correlated, connection kept), allowed origins (HTTP 403),
 * the inflated-size cap with permessage-deflate (close 1009), and TLS. Each
 * test also proves that the limit hit one connection only: a normal call
 * through the relay still succeeds afterwards.
 */
import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  decodePayload,
  encodePayload,
  type ErrorFrame,
  type Frame,
  FrameType,
  RelayErrorCode,
  type RequestFrame,
  ResponseFlag,
  type ResponseFrame,
} from '@wsrelay/protocol';
import { type RelayModuleOptions, RelayCore } from '@wsrelay/relay';
import { WsRelayClient } from '@wsrelay/transport';
import { firstValueFrom } from 'rxjs';
import { isRequest, request } from './support/frames.js';
import { rejection, type RunningRelay, startClient, startProvider, startRelay, until, useCleanup } from './support/harness.js';
import { RawNode, refusal } from './support/raw-node.js';
import { startTlsRelay, TEST_CERT } from './support/tls-relay.js';

@Controller()
class EchoController {
  @MessagePattern('echo')
  echo(@Payload() v: unknown) {
    return v;
  }
}

const isError = (id: number) => (f: Frame) => f.type === FrameType.Error && f.id === id;
const isResponse = (id: number) => (f: Frame) => f.type === FrameType.Response && f.id === id;
/** Every request's deadline: long past what a test waits for. */
const DEADLINE_MS = 10_000;

describe('relay limits', () => {
  const { add, track } = useCleanup();

  /** A relay with an echo provider and a client on it; torn down after the test. */
  async function boot(
    options: RelayModuleOptions,
    start = startRelay,
  ): Promise<{ relay: RunningRelay; client: WsRelayClient; router: RelayCore }> {
    const relay = await start(options);
    add(() => relay.close());
    const tls = relay.url.startsWith('wss:') ? { tls: { ca: TEST_CERT } } : {};
    const provider = await startProvider([EchoController], { urls: [relay.url], ...tls });
    add(() => provider.close());
    const client = await startClient({ urls: [relay.url], ...tls });
    add(() => client.close());
    return { relay, client, router: relay.app.get(RelayCore) };
  }

  async function expectStillRoutes(client: WsRelayClient): Promise<void> {
    expect(await firstValueFrom(client.send('echo', { still: 'routed' }))).toEqual({ still: 'routed' });
  }

  it('maxConnections: refuses the connection over the cap with HTTP 503 at the upgrade, and admits one when a slot frees', async () => {
    const { relay, client, router } = await boot({ maxConnections: 4 }); // the provider and the client hold 2
    // Upgrades racing for the last 2 slots: exactly 2 get in.
    const attempts = await Promise.allSettled(Array.from({ length: 5 }, () => RawNode.open(relay.url)));
    const opened = attempts.flatMap(a => (a.status === 'fulfilled' ? [track(a.value)] : []));
    const refused = attempts.flatMap(a => (a.status === 'rejected' ? [String(a.reason)] : []));
    expect(opened).toHaveLength(2);
    expect(refused).toEqual(Array(3).fill(expect.stringMatching(/503/)));
    expect(router.connectionCount).toBe(4);

    const answer = await refusal(relay.url);
    expect(answer.status).toBe(503);
    expect(answer.headers['x-wsrelay-error']).toBe(RelayErrorCode.RELAY_UNAVAILABLE);
    expect(answer.body).toMatch(/limit of 4 connections/);

    opened[0].close();
    await until(() => router.connectionCount === 3, 5000, 'the closed connection to be dropped');
    track(await RawNode.hello(relay.url, 'late-comer'));
    expect(router.connectionCount).toBe(4);
    await expectStillRoutes(client);
  });

  it('rateLimit: a burst over the bucket is read at the rate, in order, none refused; others are unaffected', async () => {
    const { relay, client } = await boot({ rateLimit: { perSecond: 20, burst: 5 } });
    // HELLO takes one token of the 5; the other 19 frames wait, unread, until tokens come back.
    const node = track(await RawNode.hello(relay.url, 'bursty', { patterns: ['bursty.answer'] }));
    const ids = Array.from({ length: 20 }, (_, i) => i + 1);
    for (const id of ids) node.send(request(id, 'echo', DEADLINE_MS));
    // While the burst is held, a call from another connection goes straight through.
    await expectStillRoutes(client);

    const order: number[] = [];
    while (order.length < ids.length) {
      const f = (await node.next(x => (x.type === FrameType.Response || x.type === FrameType.Error) && ids.includes(x.id))) as
        ResponseFrame | ErrorFrame;
      expect(f.type).toBe(FrameType.Response); // delayed, never refused
      expect(decodePayload((f as ResponseFrame).payload as Uint8Array)).toBe(f.id);
      order.push(f.id);
    }
    expect(order).toEqual(ids);

    // Still open and still routed to.
    expect(node.closeCode).toBeUndefined();
    const call = firstValueFrom(client.send('bursty.answer', 'q'));
    const delivered = (await node.next(isRequest)) as RequestFrame;
    node.send({ type: FrameType.Response, id: delivered.id, flags: ResponseFlag.DONE, payload: encodePayload('answered') });
    expect(await call).toBe('answered');
    await expectStillRoutes(client);
  });

  it('maxInFlightPerConnection: the request (or WAIT) over the cap gets RATE_LIMITED; completing or cancelling one frees a slot', async () => {
    const { relay, client } = await boot({ maxInFlightPerConnection: 3 });
    const mute = track(await RawNode.hello(relay.url, 'mute', { patterns: ['hang'] })); // never answers on its own
    const caller = track(await RawNode.hello(relay.url, 'busy'));
    for (const id of [1, 2, 3]) caller.send(request(id, 'hang', DEADLINE_MS));
    const delivered: RequestFrame[] = [];
    for (let i = 0; i < 3; i++) delivered.push((await mute.next(isRequest)) as RequestFrame);

    caller.send(request(4, 'hang', DEADLINE_MS));
    caller.send({ type: FrameType.Wait, id: 5, pattern: 'nobody.serves.this', timeoutMs: 10_000 });
    for (const id of [4, 5]) {
      const f = (await caller.next(isError(id))) as ErrorFrame;
      expect(f.code).toBe(RelayErrorCode.RATE_LIMITED);
      expect(f.message).toMatch(/3 requests are already in flight/);
    }

    // A completion frees a slot.
    mute.send({ type: FrameType.Response, id: delivered[0].id, flags: ResponseFlag.DONE, payload: encodePayload('done') });
    await caller.next(isResponse(1));
    caller.send(request(6, 'hang', DEADLINE_MS));
    expect(decodePayload(((await mute.next(isRequest)) as RequestFrame).payload)).toBe(6);

    // So does a cancel.
    caller.send({ type: FrameType.Cancel, id: 2 });
    await mute.next(f => f.type === FrameType.Cancel && f.id === delivered[1].id);
    caller.send(request(7, 'hang', DEADLINE_MS));
    expect(decodePayload(((await mute.next(isRequest)) as RequestFrame).payload)).toBe(7);

    // Full again (3, 6, 7): refused, and never delivered.
    caller.send(request(8, 'hang', DEADLINE_MS));
    expect(await caller.next(isError(8))).toMatchObject({ code: RelayErrorCode.RATE_LIMITED });
    mute.send({ type: FrameType.Ping });
    await mute.next(f => f.type === FrameType.Pong);
    expect(mute.frames.filter(isRequest)).toEqual([]);

    // The cap is per connection: another caller is served meanwhile.
    const other = track(await RawNode.hello(relay.url, 'other'));
    other.send(request(1, 'hang', DEADLINE_MS, { payload: encodePayload('from another connection') }));
    expect(decodePayload(((await mute.next(isRequest)) as RequestFrame).payload)).toBe('from another connection');
    await expectStillRoutes(client);
  });

  it('allowedOrigins: a listed origin and no origin are admitted; any other origin gets HTTP 403 FORBIDDEN before the socket opens', async () => {
    const { relay, client, router } = await boot({ allowedOrigins: ['https://app.example.com'] });
    const browser = track(await RawNode.hello(relay.url, 'browser', { headers: { Origin: 'https://app.example.com' } }));
    const before = router.connectionCount;
    for (const origin of ['https://evil.example.com', 'https://app.example.com.evil.com', 'http://app.example.com', 'null']) {
      const answer = await refusal(relay.url, { headers: { Origin: origin } });
      expect(answer.status).toBe(403);
      expect(answer.headers['x-wsrelay-error']).toBe(RelayErrorCode.FORBIDDEN);
      expect(answer.body).toContain(`origin ${origin} is not allowed`);
    }
    expect(router.connectionCount).toBe(before);

    const plainNode = track(await RawNode.hello(relay.url, 'no-origin'));
    for (const node of [browser, plainNode]) {
      node.send(request(1, 'echo', DEADLINE_MS, { payload: encodePayload('admitted') }));
      expect(decodePayload(((await node.next(isResponse(1))) as ResponseFrame).payload as Uint8Array)).toBe('admitted');
    }
    await expectStillRoutes(client);
  });

  it('perMessageDeflate: compressed frames work, but one that inflates past twice maxPayloadBytes (an 8 MiB bomb) closes the connection with 1009', async () => {
    const { relay, client } = await boot({ perMessageDeflate: true }); // maxPayloadBytes 1 MiB: inflated frames capped at 2 MiB
    const node = track(await RawNode.hello(relay.url, 'deflating', { perMessageDeflate: true }));
    expect(node.socket.extensions).toContain('permessage-deflate');

    const text = 'a'.repeat(200_000);
    node.send(request(1, 'echo', DEADLINE_MS, { payload: encodePayload(text) }));
    expect(decodePayload(((await node.next(isResponse(1))) as ResponseFrame).payload as Uint8Array)).toBe(text);

    // 8 MiB of zeros deflates to a few KiB on the wire.
    node.send({ ...request(2, 'echo', DEADLINE_MS), payload: new Uint8Array(8 * 1024 * 1024) });
    expect((await node.closed()).code).toBe(1009);
    expect(node.frames.filter(isResponse(2))).toEqual([]);
    await expectStillRoutes(client);
  });

  it('TLS: nodes trusting the certificate talk over wss://; a node without the CA fails with RELAY_UNAVAILABLE naming the certificate', async () => {
    const { relay, client, router } = await boot({}, startTlsRelay);
    expect(relay.url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/relay$/);
    expect(await firstValueFrom(client.send('echo', 'over tls'))).toBe('over tls');

    const untrusting = new WsRelayClient({ urls: [relay.url], connectTimeoutMs: 300, reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
    add(() => untrusting.close());
    const err = await rejection(untrusting.connect());
    expect(err).toMatchObject({ code: RelayErrorCode.RELAY_UNAVAILABLE });
    expect((err as Error).message).toMatch(/certificate/i);
    expect(router.connectionCount).toBe(2); // the provider and the client; the untrusting node never got a socket
    await expectStillRoutes(client);
  });
});
