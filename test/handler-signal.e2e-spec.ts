/**
 * Pins: a provider learned that a call was abandoned (the relay sends CANCEL
 * when the caller unsubscribes, its deadline passes or its connection closes)
 * only by unsubscribing an Observable handler's stream: an `async` handler
 * ran on to its end with nothing to tell it to stop. `ctx.signal` aborts in
 * each of those cases, with a RelayError saying why, and never for a call
 * that completed.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller } from '@nestjs/common';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import { RelayError, RelayErrorCode, type WsRelayClient, type WsRelayContext, WsRelayRecordBuilder } from '@wsrelay/transport';
import { EventEmitter, once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { firstValueFrom } from 'rxjs';
import type WebSocket from 'ws';
import { rejection, type RunningProvider, type RunningRelay, startClient, startProvider, startRelay } from './support/harness.js';

/** What the handlers saw: `started:<key>` as one begins, `stopped:<key>` (with its signal) as it ends. */
const probe = new EventEmitter();
/** The signal of each call that completed, by key. */
const completed = new Map<string, AbortSignal>();

@Controller()
class SignalController {
  /** Waits (a minute at most) on a timer that observes the call's signal, as `fetch()` or a driver would. */
  @MessagePattern('wait')
  async wait(@Payload() key: string, @Ctx() ctx: WsRelayContext): Promise<string> {
    probe.emit(`started:${key}`);
    try {
      await delay(60_000, undefined, { signal: ctx.signal, ref: false });
      return 'waited a minute';
    } finally {
      probe.emit(`stopped:${key}`, ctx.signal);
    }
  }

  @MessagePattern('quick')
  async quick(@Payload() key: string, @Ctx() ctx: WsRelayContext): Promise<string> {
    // Asked for while the call runs: the deadline's timer is armed.
    await delay(1, undefined, { signal: ctx.signal });
    completed.set(key, ctx.signal);
    return 'done';
  }
}

/** Starts `wait` for `key` and resolves, once its handler has started, with what resolves to its signal when the handler stops. */
async function startWaiting(client: WsRelayClient, key: string, timeoutMs?: number) {
  const started = once(probe, `started:${key}`);
  const stopped = once(probe, `stopped:${key}`).then(([signal]) => signal as AbortSignal);
  const record = new WsRelayRecordBuilder(key);
  if (timeoutMs !== undefined) record.setTimeout(timeoutMs);
  const call = rejection(firstValueFrom(client.send('wait', record.build())));
  await started;
  return { call, stopped };
}

describe('ctx.signal: the handler is told when its call is abandoned', () => {
  let relay: RunningRelay;
  let provider: RunningProvider;
  let client: WsRelayClient;

  beforeAll(async () => {
    relay = await startRelay();
    // No drain at close: a handler still waiting (were its signal never aborted) must not hold the suite up.
    provider = await startProvider([SignalController], { urls: [relay.url], drainTimeoutMs: 0 });
    client = await startClient({ urls: [relay.url] });
  });

  afterAll(async () => {
    await client?.close();
    await provider?.close();
    await relay?.close();
  });

  it('aborts with CLOSED when the caller unsubscribes, and the async handler stops', async () => {
    const started = once(probe, 'started:unsub');
    const stopped = once(probe, 'stopped:unsub');
    const subscription = client.send('wait', 'unsub').subscribe({ error: () => undefined });
    await started;
    subscription.unsubscribe();
    const [signal] = (await stopped) as [AbortSignal];
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(RelayError);
    expect(signal.reason).toMatchObject({ code: RelayErrorCode.CLOSED, status: 499 });
  });

  it("aborts with TIMEOUT when the call's deadline passes", async () => {
    // Long enough that a provider slow to read the REQUEST still takes the relay's CANCEL for the deadline.
    const { call, stopped } = await startWaiting(client, 'deadline', 1000);
    expect(await call).toMatchObject({ code: RelayErrorCode.TIMEOUT });
    const signal = await stopped;
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toMatchObject({ code: RelayErrorCode.TIMEOUT, status: 504, message: expect.stringContaining('1000 ms') });
  });

  it("aborts with CLOSED when the caller's connection is gone", async () => {
    const doomed = await startClient({ urls: [relay.url] });
    try {
      const started = once(probe, 'started:gone');
      const stopped = once(probe, 'stopped:gone');
      doomed.send('wait', 'gone').subscribe({ error: () => undefined });
      await started;
      // No goodbye and no CANCEL from the caller: its TCP connection is cut, as when its process dies.
      doomed.unwrap<WebSocket>().terminate();
      const [signal] = (await stopped) as [AbortSignal];
      expect(signal.reason).toMatchObject({ code: RelayErrorCode.CLOSED });
    } finally {
      await doomed.close();
    }
  });

  it('never aborts the signal of a call that completed, not even once its deadline has passed', async () => {
    expect(await firstValueFrom(client.send('quick', new WsRelayRecordBuilder('ok').setTimeout(100).build()))).toBe('done');
    // A call made after it, with the same timeout, times out: by then the first one's deadline has passed too.
    const { call, stopped } = await startWaiting(client, 'after-ok', 100);
    expect(await call).toMatchObject({ code: RelayErrorCode.TIMEOUT });
    expect((await stopped).aborted).toBe(true);
    const signal = completed.get('ok');
    expect(signal?.aborted).toBe(false);
  });
});
