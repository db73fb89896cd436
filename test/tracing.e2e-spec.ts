/**
 * OpenTelemetry: with `tracing: true` on the client, the relay and the
 * provider, a call makes one trace: the client's span, each relay's routing
 * span and the provider's handling span, the last two children of the
 * client's (its context travels in the W3C traceparent header), also across
 * two relays clustered over a real Redis; an event too. Spans are taken
 * from an in-memory exporter; everything else is real.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { context, propagation, type SpanContext, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { RelayCore } from '@wsrelay/relay';
import type { WsRelayContext } from '@wsrelay/transport';
import { randomBytes } from 'node:crypto';
import { firstValueFrom, lastValueFrom } from 'rxjs';
import { CLUSTER_TIMING } from './support/cluster.js';
import { type RunningRelay, startClient, startProvider, startRelay, until, useCleanup } from './support/harness.js';
import { useTestRedis } from './support/redis.js';

const exporter = new InMemorySpanExporter();
const seen = { traceparent: [] as string[], inHandler: [] as Array<SpanContext | undefined> };

@Controller()
class TracedController {
  @MessagePattern('greet')
  greet(@Payload() name: string, @Ctx() ctx: WsRelayContext): string {
    seen.traceparent.push(ctx.getHeaders().traceparent);
    // The handler runs with the provider's span active: spans it starts are its children.
    seen.inHandler.push(trace.getActiveSpan()?.spanContext());
    return `Hello, ${name}!`;
  }

  @EventPattern('orders.created')
  created(_order: unknown): void {
    seen.inHandler.push(trace.getActiveSpan()?.spanContext());
  }
}

const spanNamed = (name: string) => {
  const span = exporter.getFinishedSpans().find(s => s.name === name);
  if (span === undefined)
    throw new Error(
      `no span "${name}" among ${exporter
        .getFinishedSpans()
        .map(s => s.name)
        .join(', ')}`,
    );
  return span;
};
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

describe('tracing through the relay', () => {
  const { track } = useCleanup();
  const redis = useTestRedis();

  beforeAll(() => {
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  });

  afterAll(() => {
    trace.disable();
    propagation.disable();
    context.disable();
  });

  beforeEach(() => {
    exporter.reset();
    seen.traceparent = [];
    seen.inHandler = [];
  });

  it('a call makes one trace: the client span, the relay routing span and the provider span, children of the client span', async () => {
    const relay = track(await startRelay({ tracing: true }));
    track(await startProvider([TracedController], { urls: [relay.url], tracing: true }));
    const client = track(await startClient({ urls: [relay.url], tracing: true }));
    expect(await firstValueFrom(client.send('greet', 'Ada'))).toBe('Hello, Ada!');
    await until(() => exporter.getFinishedSpans().length === 3, 5000, 'three spans');
    const [call, route, handle] = ['send greet', 'route greet', 'handle greet'].map(spanNamed);
    expect(new Set([call, route, handle].map(s => s.spanContext().traceId)).size).toBe(1);
    expect(parentOf(call)).toBeUndefined();
    expect(parentOf(route)).toBe(call.spanContext().spanId);
    expect(parentOf(handle)).toBe(call.spanContext().spanId);
    expect(route.attributes).toMatchObject({ 'rpc.method': 'greet', 'wsrelay.caller': client.nodeId });
    expect(seen.traceparent[0]).toMatch(new RegExp(`^00-${call.spanContext().traceId}-${call.spanContext().spanId}-01$`));
    expect(seen.inHandler[0]?.spanId).toBe(handle.spanContext().spanId);
    // Kinds: client, server (the relay routes for the caller), server.
    expect([call.kind, route.kind, handle.kind]).toEqual([2, 1, 1]);
  });

  it("a failed call ends its client span with the error's code, and an event is traced from the emitter to its handler", async () => {
    const relay = track(await startRelay({ tracing: true }));
    track(await startProvider([TracedController], { urls: [relay.url], tracing: true }));
    const client = track(await startClient({ urls: [relay.url], tracing: true }));
    await expect(firstValueFrom(client.send('nobody.serves', 1))).rejects.toMatchObject({ code: 'MICROSERVICE_OFFLINE' });
    expect(spanNamed('send nobody.serves').status).toMatchObject({ code: 2, message: 'MICROSERVICE_OFFLINE' });
    exporter.reset();
    expect(await lastValueFrom(client.emit('orders.created', { id: 1 }))).toEqual({ recipients: 1 });
    await until(() => exporter.getFinishedSpans().length === 3, 5000, 'three spans');
    const [emit, published, handled] = ['emit orders.created', 'publish orders.created', 'handle orders.created'].map(spanNamed);
    expect(parentOf(published)).toBe(emit.spanContext().spanId);
    expect(parentOf(handled)).toBe(emit.spanContext().spanId);
    expect(published.attributes).toMatchObject({ 'wsrelay.recipients': 1 });
    expect(seen.inHandler[0]?.spanId).toBe(handled.spanContext().spanId);
  });

  it('across two relays over Redis: both relays route in the same trace, under the client span', async () => {
    const settings = { redis: redis.url, channelPrefix: `wsrelay-trace-${randomBytes(4).toString('hex')}`, ...CLUSTER_TIMING };
    const a = track(await startRelay({ relayId: 'A', cluster: settings, tracing: true }));
    const b = track(await startRelay({ relayId: 'B', cluster: settings, tracing: true }));
    const status = (r: RunningRelay) => r.app.get(RelayCore).status().cluster;
    await until(() => [a, b].every(r => status(r).healthy && status(r).relays.length === 1), 10_000, 'the relays to see each other');
    track(await startProvider([TracedController], { urls: [b.url], tracing: true }));
    const client = track(await startClient({ urls: [a.url], tracing: true }));
    await client.waitFor('greet', 10_000);
    exporter.reset();
    expect(await firstValueFrom(client.send('greet', 'Grace'))).toBe('Hello, Grace!');
    await until(() => exporter.getFinishedSpans().length === 4, 5000, 'four spans');
    const call = spanNamed('send greet');
    const routes = exporter.getFinishedSpans().filter(s => s.name === 'route greet');
    expect(routes.map(r => r.attributes['wsrelay.relay']).sort()).toEqual(['A', 'B']);
    expect(routes.find(r => r.attributes['wsrelay.relay'] === 'B')?.attributes['wsrelay.forwarded_by']).toBe('A');
    for (const span of [...routes, spanNamed('handle greet')]) {
      expect(span.spanContext().traceId).toBe(call.spanContext().traceId);
      expect(parentOf(span)).toBe(call.spanContext().spanId);
    }
  });

  it('without tracing nothing is made, and no traceparent travels', async () => {
    const relay = track(await startRelay());
    track(await startProvider([TracedController], { urls: [relay.url] }));
    const client = track(await startClient({ urls: [relay.url] }));
    expect(await firstValueFrom(client.send('greet', 'Ada'))).toBe('Hello, Ada!');
    expect(exporter.getFinishedSpans()).toEqual([]);
    expect(seen.traceparent).toEqual([undefined]);
  });
});
