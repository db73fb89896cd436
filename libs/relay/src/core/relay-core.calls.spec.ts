/**
 * RelayCore, two relays on one in-memory hub, calls across them: a REQUEST from a node on one relay
 * to a provider on the other and its responses back, CANCEL, WAIT, and a call in flight when the
 * provider drops, drains, or its relay shuts down. Events: relay-core.events.spec.ts; nodes and
 * diagnostics: relay-core.nodes.spec.ts.
 */
import { describe, expect, it } from '@jest/globals';
import {
  CloseCode,
  decodePayload,
  encodePayload,
  type ErrorFrame,
  FrameType,
  RelayErrorCode,
  type RequestFrame,
  ResponseFlag,
} from '@wsrelay/protocol';
import { connect, disconnect, framesOf, request, seen, twoRelays, turns, until } from '../../spec-support/relay-core-setup.js';

describe('RelayCore: two relays on one in-memory hub', () => {
  /** Relays A and B, started, each knowing the other (torn down after each test). */
  const pair = twoRelays();

  it('routes a request from a node on A to a provider on B, and its stream of responses back', async () => {
    const [a, b] = await pair();
    const caller = connect(a, 'caller');
    const provider = connect(b, 'prov', { patterns: ['sum'] });
    await seen(a, 'prov');

    a.request(caller.session, request(1, 'sum', [1, 2]));
    await until('the request at the provider', () => framesOf(provider, FrameType.Request).length === 1);
    const [delivered] = framesOf<RequestFrame>(provider, FrameType.Request);
    expect(delivered).toMatchObject({ pattern: 'sum', timeoutMs: 5000, peer: 'caller', claims: null, ext: null });
    expect(decodePayload(delivered.payload)).toEqual([1, 2]);
    expect(a.nodeDiagnostics('caller')).toMatchObject({ local: true, requestsOut: 1 });
    expect(b.nodeDiagnostics('prov')).toMatchObject({ local: true, requestsIn: 1 });
    expect([a.diagnostics().requests, b.diagnostics().requests]).toEqual([1, 1]);
    expect([a.status().inFlight, b.status().inFlight]).toEqual([1, 1]);

    b.response(provider.session, { type: FrameType.Response, id: delivered.id, flags: 0, payload: encodePayload(3) });
    b.response(provider.session, { type: FrameType.Response, id: delivered.id, flags: ResponseFlag.DONE, payload: null });
    await until('both responses at the caller', () => framesOf(caller, FrameType.Response).length === 2);
    expect(framesOf(caller, FrameType.Response)).toEqual([
      { type: FrameType.Response, id: 1, flags: 0, payload: encodePayload(3) },
      { type: FrameType.Response, id: 1, flags: ResponseFlag.DONE, payload: null },
    ]);
    expect([a.diagnostics().requests, b.diagnostics().requests]).toEqual([0, 0]);
    expect(a.nodeDiagnostics('caller')).toMatchObject({ requestsOut: 0 });
    expect(b.nodeDiagnostics('prov')).toMatchObject({ requestsIn: 0 });

    // Only the provider the request went to could answer it, and only while it was in flight.
    b.response(provider.session, { type: FrameType.Response, id: delivered.id, flags: ResponseFlag.DONE, payload: null });
    expect(b.diagnostics().droppedFrames).toBe(1);
  });

  it('passes a CANCEL from the caller on A to the provider on B under the id B gave it', async () => {
    const [a, b] = await pair();
    const caller = connect(a, 'caller');
    const provider = connect(b, 'prov', { patterns: ['sum'] });
    await seen(a, 'prov');
    a.request(caller.session, request(1, 'sum', null));
    await until('the request at the provider', () => framesOf(provider, FrameType.Request).length === 1);
    const [delivered] = framesOf<RequestFrame>(provider, FrameType.Request);
    a.cancel(caller.session, { type: FrameType.Cancel, id: 1 });
    await until('the cancel at the provider', () => framesOf(provider, FrameType.Cancel).length === 1);
    expect(framesOf(provider, FrameType.Cancel)).toEqual([{ type: FrameType.Cancel, id: delivered.id }]);
    expect([a.diagnostics().requests, b.diagnostics().requests]).toEqual([0, 0]);
  });

  it('answers a WAIT on A once a provider of the pattern says HELLO on B', async () => {
    const [a, b] = await pair();
    const caller = connect(a, 'caller');
    a.wait(caller.session, { type: FrameType.Wait, id: 4, pattern: 'sum', timeoutMs: 5000 });
    expect(a.nodeDiagnostics('caller')).toMatchObject({ waits: 1 });
    connect(b, 'prov', { patterns: ['sum'] });
    await until('the WAIT answered', () => framesOf(caller, FrameType.Ack).length === 1);
    expect(framesOf(caller, FrameType.Ack)).toEqual([{ type: FrameType.Ack, id: 4, recipients: 1 }]);
    expect(a.nodeDiagnostics('caller')).toMatchObject({ waits: 0 });
  });

  it('fails a call in flight with PROVIDER_DISCONNECTED, once, when the provider’s connection on B drops', async () => {
    const [a, b] = await pair();
    const caller = connect(a, 'caller');
    const provider = connect(b, 'prov', { patterns: ['sum'] });
    await seen(a, 'prov');
    a.request(caller.session, request(1, 'sum', null));
    await until('the request at the provider', () => framesOf(provider, FrameType.Request).length === 1);

    disconnect(b, provider);
    await until('the error at the caller', () => framesOf(caller, FrameType.Error).length > 0);
    await until('A to unroute the provider', () => a.nodeDiagnostics('prov') === undefined);
    await turns();
    expect(framesOf<ErrorFrame>(caller, FrameType.Error)).toMatchObject([{ id: 1, code: RelayErrorCode.PROVIDER_DISCONNECTED }]);
    expect([a.diagnostics().requests, b.diagnostics().requests]).toEqual([0, 0]);
    expect(b.connectionCount).toBe(0);

    // Nothing else serves it now.
    a.request(caller.session, request(2, 'sum', null));
    expect(framesOf<ErrorFrame>(caller, FrameType.Error).at(-1)).toMatchObject({ id: 2, code: RelayErrorCode.MICROSERVICE_OFFLINE });
  });

  it('fails a call in flight with PROVIDER_DISCONNECTED when the provider’s relay shuts down without it answering', async () => {
    const [a, b] = await pair({ drainTimeoutMs: 50 });
    const caller = connect(a, 'caller');
    const provider = connect(b, 'prov', { patterns: ['sum'] });
    await seen(a, 'prov');
    a.request(caller.session, request(1, 'sum', null));
    await until('the request at the provider', () => framesOf(provider, FrameType.Request).length === 1);

    await b.onModuleDestroy();
    expect(framesOf(provider, FrameType.GoAway)).toMatchObject([{ type: FrameType.GoAway, drainMs: 50 }]);
    expect(provider.socket.closed).toMatchObject({ code: CloseCode.GOING_AWAY });
    await until('the error at the caller', () => framesOf(caller, FrameType.Error).length > 0);
    await turns();
    expect(framesOf<ErrorFrame>(caller, FrameType.Error)).toMatchObject([{ id: 1, code: RelayErrorCode.PROVIDER_DISCONNECTED }]);
    expect(a.status().cluster.relays).toEqual([]);
    expect(a.diagnostics().requests).toBe(0);
    expect(a.nodeDiagnostics('prov')).toBeUndefined();
  });

  it('lets a call in flight complete through the shutdown drain of the provider’s relay', async () => {
    const [a, b] = await pair({ drainTimeoutMs: 10_000 });
    const caller = connect(a, 'caller');
    const provider = connect(b, 'prov', { patterns: ['sum'] });
    await seen(a, 'prov');
    a.request(caller.session, request(1, 'sum', null));
    await until('the request at the provider', () => framesOf(provider, FrameType.Request).length === 1);
    const [delivered] = framesOf<RequestFrame>(provider, FrameType.Request);

    const started = Date.now();
    const closing = b.onModuleDestroy();
    expect(b.accepting).toBe(false);
    expect(framesOf(provider, FrameType.GoAway)).toHaveLength(1);
    // A hears that the provider left routing gracefully: the call is not failed.
    await until('A to unroute the provider', () => a.nodeDiagnostics('prov') === undefined);
    expect(framesOf(caller, FrameType.Error)).toEqual([]);

    b.response(provider.session, { type: FrameType.Response, id: delivered.id, flags: ResponseFlag.DONE, payload: encodePayload('ok') });
    await closing;
    expect(Date.now() - started).toBeLessThan(5000);
    await until('the response at the caller', () => framesOf(caller, FrameType.Response).length === 1);
    expect(framesOf(caller, FrameType.Response)).toEqual([
      { type: FrameType.Response, id: 1, flags: ResponseFlag.DONE, payload: encodePayload('ok') },
    ]);
    expect(framesOf(caller, FrameType.Error)).toEqual([]);
  });

  it('DRAIN takes a node out of routing on both relays, ACKs with its requests in flight, and lets them complete', async () => {
    const [a, b] = await pair();
    const caller = connect(a, 'caller');
    const provider = connect(b, 'prov', { patterns: ['sum'] });
    await seen(a, 'prov');
    a.request(caller.session, request(1, 'sum', null));
    await until('the request at the provider', () => framesOf(provider, FrameType.Request).length === 1);
    const [delivered] = framesOf<RequestFrame>(provider, FrameType.Request);

    b.drainNode(provider.session, { type: FrameType.Drain, id: 9 });
    expect(framesOf(provider, FrameType.Ack)).toEqual([{ type: FrameType.Ack, id: 9, recipients: 1 }]);
    expect(b.nodeDiagnostics('prov')).toMatchObject({ local: true, routed: false, requestsIn: 1 });
    await until('A to unroute the provider', () => a.nodeDiagnostics('prov') === undefined);

    b.response(provider.session, { type: FrameType.Response, id: delivered.id, flags: ResponseFlag.DONE, payload: null });
    await until('the response at the caller', () => framesOf(caller, FrameType.Response).length === 1);
    expect(framesOf(caller, FrameType.Error)).toEqual([]);
  });
});
