/**
 * Resilience in one process (the chaos specs do it with real process
 * kills): a provider's close() drains (nothing in flight is lost, nothing new
 * is routed to it), a relay's shutdown drains (GOAWAY: nodes move to the next
 * relay while what is in flight completes), several relay URLs in
 * 'failover' and 'all' modes with a status per URL, the bounded offline
 * queue, and a consumer that stops reading (passed over, then closed with
 * SLOW_CONSUMER without growing the relay's memory).
 */
import { Controller, Inject } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { CloseCode, encodePayload, FrameType, RelayErrorCode } from '@wsrelay/protocol';
import { RelayCore } from '@wsrelay/relay';
import { type RelayError, WsRelayClient } from '@wsrelay/transport';
import { firstValueFrom } from 'rxjs';
import { answerTo, request } from './support/frames.js';
import { rejection, type RunningProvider, startClient, startProvider, startRelay, until, useCleanup } from './support/harness.js';
import { RawNode } from './support/raw-node.js';

const NODE = Symbol('node');
/** Releases of 'hold' calls waiting, in order. */
const held: Array<() => void> = [];

@Controller()
class WorkController {
  constructor(@Inject(NODE) private readonly node: string) {}

  @MessagePattern('who')
  who() {
    return this.node;
  }

  /** Answers when the test releases it. */
  @MessagePattern('hold')
  async hold(@Payload() v: unknown) {
    await new Promise<void>(resolve => held.push(resolve));
    return { node: this.node, v };
  }
}

async function provider(urls: string[], nodeId: string, extra: Record<string, unknown> = {}): Promise<RunningProvider> {
  return startProvider([WorkController], { urls, nodeId, ...extra }, [{ provide: NODE, useValue: nodeId }]);
}

describe('resilience', () => {
  afterEach(() => {
    for (const r of held.splice(0)) r();
  });
  const { add, track } = useCleanup();

  it("a provider's close() drains: the call in flight completes, new calls go to the other provider, none fails", async () => {
    const relay = track(await startRelay());
    const leaving = await provider([relay.url], 'leaving');
    track(await provider([relay.url], 'staying'));
    const client = track(await startClient({ urls: [relay.url] }));
    await until(() => relay.app.get(RelayCore).status().nodes === 3, 5000, 'all nodes');
    // Round-robin: one held call at each provider.
    const calls = [0, 1].map(i => firstValueFrom(client.send<{ node: string }>('hold', i)));
    await until(() => held.length === 2, 5000, 'a held call at each provider');
    const closing = leaving.close();
    // New calls meanwhile all go to the provider that stays.
    const during = await Promise.all(Array.from({ length: 6 }, () => firstValueFrom(client.send<string>('who', 1))));
    expect(new Set(during)).toEqual(new Set(['staying']));
    for (const r of held.splice(0)) r();
    const answers = await Promise.all(calls);
    await closing;
    expect(answers.map(a => a.node).sort()).toEqual(['leaving', 'staying']);
    // Gone from routing and discovery.
    expect((await client.discover()).map(n => n.nodeId)).not.toContain('leaving');
  });

  it('a relay shutting down sends GOAWAY: nodes move to the next relay at once, the call in flight completes on the old one', async () => {
    const a = await startRelay({ drainTimeoutMs: 5000 });
    const b = track(await startRelay());
    const p = track(await provider([a.url, b.url], 'mover'));
    const client = track(await startClient({ urls: [a.url, b.url] }));
    const inFlight = firstValueFrom(client.send<{ node: string; v: number }>('hold', 7));
    await until(() => held.length === 1, 5000, 'the held call');
    const closing = a.app.close();
    // Both nodes reach relay B while A still holds the call open.
    await until(() => b.app.get(RelayCore).status().nodes === 2, 5000, 'the nodes on relay B');
    expect(await firstValueFrom(client.send<string>('who', 1))).toBe('mover');
    expect(client.relayStatus()).toEqual({ [a.url]: 'not_connected', [b.url]: 'connected' });
    held.shift()!();
    expect(await inFlight).toEqual({ node: 'mover', v: 7 });
    await closing;
    expect(p.strategy.relayStatus()[b.url]).toBe('connected');
  });

  it("mode 'all': a provider reachable through either of two independent relays, a client sending through any connected one", async () => {
    const a = track(await startRelay());
    const b = await startRelay();
    let bClosed = false;
    add(() => (bClosed ? undefined : b.close()));
    track(await provider([a.url, b.url], 'everywhere', { mode: 'all' }));
    const client = track(await startClient({ urls: [a.url, b.url], mode: 'all' }));
    await until(() => Object.values(client.relayStatus()).every(s => s === 'connected'), 5000, 'the client on both relays');
    await until(
      () => a.app.get(RelayCore).status().nodes === 2 && b.app.get(RelayCore).status().nodes === 2,
      5000,
      'both nodes on both relays',
    );
    expect(client.relayStatus()).toEqual({ [a.url]: 'connected', [b.url]: 'connected' });
    // Calls alternate between the two connections.
    for (let i = 0; i < 4; i++) expect(await firstValueFrom(client.send('who', i))).toBe('everywhere');
    expect(a.app.get(RelayCore).status().connections).toBe(2);
    await b.close();
    bClosed = true;
    await until(() => client.relayStatus()[b.url] !== 'connected', 5000, 'relay B down');
    expect(['connecting', 'error', 'not_connected']).toContain(client.relayStatus()[b.url]);
    for (let i = 0; i < 4; i++) expect(await firstValueFrom(client.send('who', i))).toBe('everywhere');
  });

  it('reports each URL through relay_status events', async () => {
    const relay = track(await startRelay());
    const changes: string[] = [];
    const client = new WsRelayClient({ urls: ['ws://127.0.0.1:1/nothing', relay.url], reconnect: { initialDelayMs: 10, maxDelayMs: 20 } });
    track(client);
    client.on('relay_status', (url: string, status: string) => changes.push(`${url === relay.url ? 'relay' : 'dead'}:${status}`));
    await client.connect();
    expect(changes).toEqual(expect.arrayContaining(['dead:connecting', 'dead:error', 'relay:connecting', 'relay:connected']));
    expect(client.relayStatus()).toMatchObject({ [relay.url]: 'connected' });
  });

  it('calls made while disconnected wait for the relay, and past maxOfflineQueue fail at once with RELAY_UNAVAILABLE', async () => {
    const relay = await startRelay();
    const port = relay.port;
    track(await provider([relay.url], 'offline-provider'));
    // The client's token function (called before every connect; the relay has auth off) holds its
    // reconnect until the provider is back on the new relay, so the queued calls find a handler.
    let gate: Promise<void> = Promise.resolve();
    let open = () => {};
    const client = track(
      new WsRelayClient({
        urls: [relay.url],
        token: async () => (await gate, 'unused'),
        maxOfflineQueue: 3,
        connectTimeoutMs: 10_000,
        reconnect: { initialDelayMs: 20, maxDelayMs: 50 },
      }),
    );
    await client.connect();
    gate = new Promise<void>(resolve => (open = resolve));
    await relay.close();
    await until(() => client.relayStatus()[relay.url] !== 'connected', 5000, 'the drop');
    const waiting = [1, 2, 3].map(i => firstValueFrom(client.send<string>('who', i)));
    const over = (await rejection(firstValueFrom(client.send('who', 4)))) as RelayError;
    expect(over.code).toBe(RelayErrorCode.RELAY_UNAVAILABLE);
    expect(over.message).toMatch(/maxOfflineQueue/);
    const again = track(await startRelay({}, port));
    await track(new WsRelayClient({ urls: [again.url] })).waitFor('who');
    open();
    expect(await Promise.all(waiting)).toEqual(['offline-provider', 'offline-provider', 'offline-provider']);
  });

  it('bounds calls in flight on a client (maxInFlight): more fail at once with RATE_LIMITED', async () => {
    const relay = track(await startRelay());
    track(await provider([relay.url], 'bounded'));
    const client = track(await startClient({ urls: [relay.url], maxInFlight: 2 }));
    await client.waitFor('hold');
    const first = [1, 2].map(i => firstValueFrom(client.send('hold', i)));
    await until(() => held.length === 2, 5000, 'two held calls');
    expect(await rejection(firstValueFrom(client.send('hold', 3)))).toMatchObject({ code: RelayErrorCode.RATE_LIMITED });
    for (const r of held.splice(0)) r();
    await Promise.all(first);
  });

  it('passes over a consumer that stops reading, then closes it with SLOW_CONSUMER, holding no more than its budget', async () => {
    const budget = 256 * 1024;
    const relay = track(await startRelay({ maxBufferedBytes: budget }));
    const router = relay.app.get(RelayCore);
    track(await provider([relay.url], 'reading'));
    // A provider that subscribes to a flood and stops reading its socket.
    const stalled = await RawNode.hello(relay.url, 'stalled', { patterns: ['who'], events: ['flood.*'] });
    add(() => stalled.close());
    const raw = stalled.tcp!;
    raw.pause();
    const client = track(await startClient({ urls: [relay.url] }));
    const emitter = track(await RawNode.hello(relay.url, 'flooder'));
    const session = () => router.nodeDiagnostics('stalled');
    const chunk = encodePayload('x'.repeat(16 * 1024));
    let id = 0;
    let maxHeld = 0;
    const flood = async (until: () => boolean) => {
      while (!until() && id < 10_000) {
        emitter.send({ type: FrameType.Event, id: ++id, pattern: 'flood.x', payload: chunk, peer: null, ext: null, claims: null });
        await emitter.next(f => f.type === FrameType.Ack && (f as { id: number }).id === id);
        maxHeld = Math.max(maxHeld, session()?.bufferedBytes ?? 0);
      }
    };
    // Backed up past a sixteenth of the budget: calls go to the provider that reads.
    await flood(() => session()?.slow === true);
    const served = await Promise.all(Array.from({ length: 6 }, (_, i) => firstValueFrom(client.send<string>('who', i))));
    expect(new Set(served)).toEqual(new Set(['reading']));
    // Past the budget: closed, and nothing more is buffered for it.
    await flood(() => session() === undefined || session()!.closedAsSlowConsumer);
    expect(maxHeld).toBeLessThanOrEqual(budget + 64 * 1024);
    // Once it reads again it finds the distinct close code behind what was queued.
    raw.resume();
    expect((await stalled.closed(10_000)).code).toBe(CloseCode.SLOW_CONSUMER);
  });

  it('in its shutdown drain, a relay routes a request that crossed the GOAWAY to a provider still connected, not one leaving by itself', async () => {
    const relay = await startRelay({ drainTimeoutMs: 10_000 });
    add(() => relay.close());
    const staying = await RawNode.hello(relay.url, 'moved-off', { patterns: ['work'] });
    const leaving = await RawNode.hello(relay.url, 'leaving', { patterns: ['solo'] });
    const caller = await RawNode.hello(relay.url, 'caller');
    for (const n of [staying, leaving, caller]) add(() => n.close());
    leaving.send({ type: FrameType.Drain, id: 1 });
    await leaving.next(f => f.type === FrameType.Ack);
    // A call in flight keeps the drain going.
    caller.send(request(1, 'work', 10_000));
    const first = (await staying.next(f => f.type === FrameType.Request)) as { id: number };
    const closing = relay.close();
    await caller.next(f => f.type === FrameType.GoAway);
    // Sent as if before the caller heard the GOAWAY.
    caller.send(request(2, 'work', 10_000));
    const crossed = (await staying.next(f => f.type === FrameType.Request)) as { id: number; payload: Uint8Array };
    expect(crossed.payload).toEqual(encodePayload(2));
    staying.send({ type: FrameType.Response, id: crossed.id, flags: 1, payload: encodePayload('served in the drain') });
    expect(await caller.next(answerTo(2))).toMatchObject({ type: FrameType.Response, payload: encodePayload('served in the drain') });
    // Only the node that drained itself serves 'solo': nothing new goes to it, and nothing serves 'none'.
    caller.send(request(3, 'solo', 10_000));
    caller.send(request(4, 'none', 10_000));
    expect(await caller.next(answerTo(3))).toMatchObject({ type: FrameType.Error, code: RelayErrorCode.RELAY_UNAVAILABLE });
    expect(await caller.next(answerTo(4))).toMatchObject({ type: FrameType.Error, code: RelayErrorCode.RELAY_UNAVAILABLE });
    expect(leaving.frames.filter(f => f.type === FrameType.Request)).toEqual([]);
    staying.send({ type: FrameType.Response, id: first.id, flags: 1, payload: encodePayload('first') });
    expect(await caller.next(answerTo(1))).toMatchObject({ type: FrameType.Response });
    await closing;
  });
});
