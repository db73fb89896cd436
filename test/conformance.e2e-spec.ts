/**
 * The conformance script (scripts/conformance, `npm run conformance`) that
 * authors of a relay or client in another language run against a relay:
 * against a real relay every scenario passes (but for the known mismatches
 * below, each failing with its reason), and against broken stand-ins (a bare
 * `ws` server) the scenarios they break fail, with a reason that says what
 * was missing, so the script is shown to catch them.
 */
import { describe, expect, it } from '@jest/globals';
import { encodePayload, type Frame, FrameCodec, FrameType, type HelloFrame } from '@wsrelay/protocol';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { type ConformanceResult, runConformance, SCENARIOS } from '../scripts/conformance/scenarios.js';
import { startRelay, useCleanup } from './support/harness.js';

/** What a stand-in does: nothing, a WELCOME with fields missing, or the handshake and PONGs only. */
type StandInMode = 'silent' | 'incomplete-welcome' | 'handshake-only';

/** A bare `ws` server playing a broken relay. */
async function standIn(mode: StandInMode): Promise<{ url: string; close(): Promise<void> }> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/relay' });
  await once(server, 'listening');
  const codec = new FrameCodec();
  server.on('connection', socket => {
    socket.on('message', (data: Buffer, binary: boolean) => {
      if (mode === 'silent' || !binary) return;
      let frame: Frame;
      try {
        frame = codec.decode(data);
      } catch {
        return;
      }
      if (frame.type === FrameType.Hello && mode === 'incomplete-welcome') socket.send(encodePayload([FrameType.Welcome, 1, 'stand-in']));
      else if (frame.type === FrameType.Hello) socket.send(codec.encode(welcomeTo(frame)));
      else if (frame.type === FrameType.Ping) socket.send(codec.encode({ type: FrameType.Pong }));
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}/relay`,
    close: async () => {
      for (const client of server.clients) client.terminate();
      await new Promise(resolve => server.close(resolve));
    },
  };
}

/** A valid WELCOME without capabilities. */
function welcomeTo(hello: HelloFrame): Frame {
  return {
    type: FrameType.Welcome,
    version: 1,
    relayId: 'stand-in',
    sessionId: randomUUID(),
    nodeId: hello.nodeId,
    maxPayloadBytes: 1024 * 1024,
    heartbeatIntervalMs: 10_000,
  };
}

const byId = (results: readonly ConformanceResult[]) => new Map(results.map(r => [r.id, r]));
const report = (results: readonly ConformanceResult[]) => results.map(r => `${r.status} ${r.id}: ${r.reason ?? ''}`).join('\n');

describe('conformance script', () => {
  const { track } = useCleanup();

  it('passes every scenario against a real relay', async () => {
    const relay = track(await startRelay());
    const results = await runConformance(relay.url);
    expect(results.map(r => r.id)).toEqual(SCENARIOS.map(s => s.id));
    expect(report(results.filter(r => r.status !== 'pass'))).toBe('');
  }, 60_000);

  it('fails the handshake, naming the missing fields, against a relay whose WELCOME lacks fields', async () => {
    const relay = track(await standIn('incomplete-welcome'));
    const results = await runConformance(relay.url, { waitTimeoutMs: 200 });
    const welcome = byId(results).get('welcome');
    expect(welcome?.status).toBe('fail');
    expect(welcome?.reason).toMatch(/is not a valid WELCOME: /);
    for (const field of ['sessionId', 'nodeId', 'maxPayloadBytes', 'heartbeatIntervalMs'])
      expect(welcome?.reason).toContain(`${field} (field`);
    // Every scenario starts with a handshake or a frame the stand-in never answers.
    expect(report(results.filter(r => r.status !== 'fail'))).toBe('');
  }, 30_000);

  it('bounds each scenario against a relay that never answers: each fails on its own, and the run goes on', async () => {
    const relay = track(await standIn('silent'));
    const results = await runConformance(relay.url, { waitTimeoutMs: 10_000, scenarioTimeoutMs: 150 });
    expect(results).toHaveLength(SCENARIOS.length);
    for (const r of results) expect(`${r.id}: ${r.status} ${r.reason}`).toBe(`${r.id}: fail the scenario did not end within 150 ms`);
  }, 30_000);

  it('tells apart what a handshake-only stand-in does (WELCOME, PONG) from what it does not', async () => {
    const relay = track(await standIn('handshake-only'));
    const results = byId(await runConformance(relay.url, { waitTimeoutMs: 400 }));
    const expected = (id: string) =>
      ['welcome', 'ping', 'unknown'].includes(id) ? 'pass' : ['credit', 'free', 'nocredit'].includes(id) ? 'skip' : 'fail';
    expect(SCENARIOS.map(s => `${s.id}: ${results.get(s.id)?.status}`)).toEqual(SCENARIOS.map(s => `${s.id}: ${expected(s.id)}`));
    expect(results.get('credit')?.reason).toMatch(/does not list the `credit` capability/);
    expect(results.get('rr')?.reason).toMatch(/^timed out after 400 ms waiting for the REQUEST for conformance-\w+-rr\.echo/);
    expect(results.get('version')?.reason).toMatch(
      /expected ERROR PROTOCOL_MISMATCH with id 0, got WELCOME|waiting for ERROR PROTOCOL_MISMATCH/,
    );
    expect(results.get('twice')?.reason).toMatch(/waiting for ERROR BAD_FRAME for a second HELLO; got instead: WELCOME/);
    expect(results.get('large')?.reason).toMatch(/waiting for ERROR PAYLOAD_TOO_LARGE/);
    expect(results.get('fanout')?.reason).toMatch(/waiting for the ACK of EVENT 1/);
  }, 30_000);
});
