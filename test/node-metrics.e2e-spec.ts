/**
 * The nodes' Prometheus metrics, in each app's own prom-client Registry,
 * through a real relay: after a known workload (calls that succeed, one to a
 * pattern nobody serves, one whose handler throws, events, one failing event
 * handler, a call queued while the relay restarts on the same port) the
 * client's and the strategy's counters and histogram counts moved by exactly
 * that, and the gauges read the connections as they are. Without the option,
 * nothing is registered anywhere.
 */
import { Controller } from '@nestjs/common';
import { EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { RelayErrorCode, type WsRelayClient, type WsRelayStrategy } from '@wsrelay/transport';
import { register, Registry } from 'prom-client';
import { firstValueFrom, lastValueFrom } from 'rxjs';
import { rejection, type RunningRelay, startClient, startProvider, startRelay, untilAsync, useCleanup } from './support/harness.js';

const CALLS = 5;
const EVENTS = 3;

@Controller()
class MeteredController {
  @MessagePattern('echo')
  echo(@Payload() v: unknown) {
    return v;
  }

  @MessagePattern('fail')
  fail(@Payload() _n: unknown) {
    throw new RpcException('boom');
  }

  @EventPattern('noted')
  noted(@Payload() _n: unknown) {
    return undefined;
  }

  @EventPattern('noted.badly')
  notedBadly(@Payload() _n: unknown) {
    throw new RpcException('event handler failed');
  }
}

/** A sample's value (a histogram's `_count` by its name), labels matched exactly; undefined when there is none. */
async function sample(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  for (const metric of await registry.getMetricsAsJSON()) {
    for (const v of metric.values as Array<{ value: number; labels: Record<string, unknown>; metricName?: string }>) {
      if ((v.metricName ?? metric.name) !== name) continue;
      const keys = Object.keys(v.labels);
      if (keys.length === Object.keys(labels).length && keys.every(k => v.labels[k] === labels[k])) return v.value;
    }
  }
  return undefined;
}

/** Resolves on the node's next `event`. */
function next(node: WsRelayClient | WsRelayStrategy, event: 'connected' | 'disconnected'): Promise<void> {
  return new Promise(resolve => node.on(event, () => resolve()));
}

describe('node metrics', () => {
  const { track } = useCleanup();

  it('count exactly the workload, on the client and on the strategy, through a relay restart', async () => {
    let relay: RunningRelay = track(await startRelay());
    const { port } = relay;
    const [serverRegistry, clientRegistry] = [new Registry(), new Registry()];
    const provider = track(await startProvider([MeteredController], { urls: [relay.url], metrics: { registry: serverRegistry } }));
    const client = track(await startClient({ urls: [relay.url], eventAck: 'handlers', metrics: { registry: clientRegistry } }));
    await client.waitFor('echo');
    expect(await sample(clientRegistry, 'wsrelay_client_connected')).toBe(1);
    expect(await sample(serverRegistry, 'wsrelay_server_connected')).toBe(1);

    for (let i = 0; i < CALLS; i++) expect(await firstValueFrom(client.send('echo', i))).toBe(i);
    expect(await rejection(firstValueFrom(client.send('nobody', 1)))).toMatchObject({ code: RelayErrorCode.MICROSERVICE_OFFLINE });
    expect(await rejection(firstValueFrom(client.send('fail', 1)))).toMatchObject({ status: 'error', message: 'boom' });
    for (let i = 0; i < EVENTS; i++) expect(await lastValueFrom(client.emit('noted', i))).toEqual({ recipients: 1 });
    expect(await rejection(lastValueFrom(client.emit('noted.badly', 1)))).toMatchObject({ code: RelayErrorCode.HANDLER_FAILED });

    // The relay goes away; a call made meanwhile waits in the offline queue.
    const down = Promise.all([next(client, 'disconnected'), next(provider.strategy, 'disconnected')]);
    await relay.close();
    await down;
    expect(await sample(clientRegistry, 'wsrelay_client_connected')).toBe(0);
    expect(await sample(serverRegistry, 'wsrelay_server_connected')).toBe(0);
    const queued = firstValueFrom(client.send('echo', 'queued'));
    await untilAsync(async () => (await sample(clientRegistry, 'wsrelay_client_offline_queue_depth')) === 1, 5000, 'the queued call');
    expect(await sample(clientRegistry, 'wsrelay_client_calls_in_flight')).toBe(1);

    // Back on the same port, holding requests while providers re-announce.
    const up = Promise.all([next(client, 'connected'), next(provider.strategy, 'connected')]);
    relay = track(await startRelay({ startupGraceMs: 5000 }, port));
    await up;
    expect(await queued).toBe('queued');

    const c = (name: string, labels?: Record<string, string>) => sample(clientRegistry, `wsrelay_client_${name}`, labels);
    expect(await c('calls_total', { outcome: 'ok' })).toBe(CALLS + 1);
    expect(await c('calls_total', { outcome: 'MICROSERVICE_OFFLINE' })).toBe(1);
    expect(await c('calls_total', { outcome: 'handler_error' })).toBe(1);
    expect(await c('call_duration_seconds_count', { result: 'ok' })).toBe(CALLS + 1);
    expect(await c('call_duration_seconds_count', { result: 'error' })).toBe(2);
    expect(await c('events_total', { outcome: 'ok' })).toBe(EVENTS);
    expect(await c('events_total', { outcome: 'HANDLER_FAILED' })).toBe(1);
    expect(await c('calls_in_flight')).toBe(0);
    expect(await c('offline_queue_depth')).toBe(0);
    expect(await c('reconnects_total')).toBe(1);
    expect(await c('connected')).toBe(1);
    expect(await c('connections', { state: 'connected' })).toBe(1);

    const s = (name: string, labels?: Record<string, string>) => sample(serverRegistry, `wsrelay_server_${name}`, labels);
    // MICROSERVICE_OFFLINE never reached the provider.
    expect(await s('requests_total', { outcome: 'ok' })).toBe(CALLS + 1);
    expect(await s('requests_total', { outcome: 'error' })).toBe(1);
    expect(await s('request_duration_seconds_count', { result: 'ok' })).toBe(CALLS + 1);
    expect(await s('request_duration_seconds_count', { result: 'error' })).toBe(1);
    expect(await s('events_total', { outcome: 'ok' })).toBe(EVENTS);
    expect(await s('events_total', { outcome: 'error' })).toBe(1);
    expect(await s('requests_in_flight')).toBe(0);
    expect(await s('reconnects_total')).toBe(1);
    expect(await s('connections', { state: 'connected' })).toBe(1);
    // Each app's registry holds its own role's metrics only.
    expect((await serverRegistry.getMetricsAsJSON()).every(m => m.name.startsWith('wsrelay_server_'))).toBe(true);
    expect((await clientRegistry.getMetricsAsJSON()).every(m => m.name.startsWith('wsrelay_client_'))).toBe(true);
  });

  it('register nothing without the option', async () => {
    const relay = track(await startRelay());
    const appRegistry = new Registry();
    track(await startProvider([MeteredController], { urls: [relay.url] }));
    const client = track(await startClient({ urls: [relay.url] }));
    await client.waitFor('echo');
    expect(await firstValueFrom(client.send('echo', 1))).toBe(1);
    expect(await lastValueFrom(client.emit('noted', 1))).toEqual({ recipients: 1 });
    expect(appRegistry.getMetricsAsArray()).toEqual([]);
    expect((await register.getMetricsAsJSON()).filter(m => m.name.startsWith('wsrelay_'))).toEqual([]);
  });
});
