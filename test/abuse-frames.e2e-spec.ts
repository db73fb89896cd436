/**
 * Abuse by frames, each with a steady well-behaved caller alongside whose
 * calls (2 s deadline) must all succeed: a flood far over the rate limit
 * (read at the rate, never decoded ahead of it), a passive client flooding
 * answers it may not send (refused, counted, closed), deeply nested and
 * over-long MessagePack inside otherwise valid frames (refused before they
 * are decoded, relay memory flat), and a frame over the size limit that is
 * not even a frame (PAYLOAD_TOO_LARGE, never decoded).
 */
import { Controller } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { CloseCode, encodePayload, type ErrorFrame, type Frame, FrameType, RelayErrorCode, ResponseFlag } from '@wsrelay/protocol';
import { RelayCore } from '@wsrelay/relay';
import type { IncomingMessage } from 'node:http';
import { startClient, startProvider, startRelay, until, useCleanup } from './support/harness.js';
import { load } from './support/load.js';
import { heapAfterGc } from './support/process-watch.js';
import { RawNode } from './support/raw-node.js';

@Controller()
class WorkController {
  @MessagePattern('work')
  work(@Payload() n: number) {
    return `done ${n}`;
  }
}

const RATE = 100;
const isError = (f: Frame): f is ErrorFrame => f.type === FrameType.Error;
/** Connections that ask for it with `?passive` are passive clients (may call and emit, not serve or answer). */
const passiveByUrl = (_claims: unknown, req: IncomingMessage) => !(req.url ?? '').includes('passive');

/** `depth` nested one-entry arrays around an empty one: as many bytes as arrays. */
function nestedArrays(depth: number): Uint8Array {
  const bytes = new Uint8Array(depth);
  bytes.fill(0x91, 0, depth - 1);
  bytes[depth - 1] = 0x90;
  return bytes;
}

/** A PING (valid: its type alone) with `tail` as a trailing field, which a decoder must otherwise skip. */
function pingWith(tail: Uint8Array): Uint8Array {
  return new Uint8Array([0x92, FrameType.Ping, ...tail]);
}

describe('abuse by frames (a steady caller alongside)', () => {
  const { add, track } = useCleanup();

  /** A relay with a provider and a steady caller (one call at a time, 2 s deadline) running. */
  async function withSteadyCaller(options: Parameters<typeof startRelay>[0]) {
    const relay = await startRelay({ isServerConnection: passiveByUrl, ...options });
    add(() => relay.close());
    const provider = await startProvider([WorkController], { urls: [relay.url] });
    add(() => provider.close());
    // A deadline far above any stall a loaded machine causes: what must hold is that every steady call is answered.
    const client = await startClient({ urls: [relay.url], timeoutMs: 15_000 });
    add(() => client.close());
    const steady = load([['steady', client]], 'work', 1);
    add(() => steady.stop());
    await steady.succeeded(5);
    return { relay, steady };
  }

  it('a flood far over the rate limit is read at the rate: no frame refused, none decoded ahead of its token, the caller loses nothing', async () => {
    const { relay, steady } = await withSteadyCaller({ rateLimit: { perSecond: RATE, burst: RATE } });
    const flooder = track(await RawNode.hello(relay.url, 'flooder'));
    const ping = flooder.codec.encode({ type: FrameType.Ping });
    const startedAt = Date.now();
    for (let i = 0; i < 30_000; i++) flooder.sendRaw(ping);

    await steady.succeeded(40);
    const seconds = (Date.now() - startedAt) / 1000;
    const pongs = flooder.frames.filter(f => f.type === FrameType.Pong).length;
    // HELLO took one token: the relay cannot have handled more PINGs than the bucket allowed in that time.
    expect(pongs).toBeLessThanOrEqual(RATE + Math.ceil(RATE * seconds));
    expect(pongs).toBeGreaterThan(0);
    expect(flooder.frames.filter(isError)).toEqual([]);
    expect(flooder.closeCode).toBeUndefined();
    await steady.stop();
    expect(steady.failed()).toEqual([]);
  });

  it("a server's answers nobody asked for take rate tokens: a flood of forged RESPONSEs is read at the rate; real answers pass", async () => {
    const { relay, steady } = await withSteadyCaller({ rateLimit: { perSecond: RATE, burst: RATE } });
    const core = relay.app.get(RelayCore);
    const forger = track(await RawNode.hello(relay.url, 'forger', { patterns: ['forger.serves'] }));
    const before = core.diagnostics().droppedFrames;
    const startedAt = Date.now();
    for (let id = 1; id <= 5000; id++) forger.send({ type: FrameType.Response, id, flags: ResponseFlag.DONE, payload: encodePayload('x') });
    await until(() => core.diagnostics().droppedFrames - before >= RATE, 5000, 'forged answers to be read');
    // The provider's real answers (owed: one per request it was given) take no token: the caller keeps its pace.
    await steady.succeeded(20);
    const seconds = (Date.now() - startedAt) / 1000;
    expect(core.diagnostics().droppedFrames - before).toBeLessThanOrEqual(RATE + Math.ceil(RATE * seconds));
    await steady.stop();
    expect(steady.failed()).toEqual([]);
  });

  it('a passive client flooding RESPONSE and HANDLED frames is refused (FORBIDDEN), counted, and closed; the caller loses nothing', async () => {
    const { relay, steady } = await withSteadyCaller({ maxBadFrames: 50 });
    const passive = track(await RawNode.hello(`${relay.url}?passive`, 'passive'));
    for (let id = 1; id <= 200; id++) {
      passive.send({ type: FrameType.Response, id, flags: ResponseFlag.DONE, payload: encodePayload('forged') });
      passive.send({ type: FrameType.Handled, id, error: null });
    }
    expect(await passive.closed()).toEqual({ code: CloseCode.BAD_FRAME, reason: '50 refused frames (the last: FORBIDDEN)' });
    const refused = passive.frames.filter(isError);
    expect(refused.length).toBe(50);
    for (const f of refused) expect(f.code).toBe(RelayErrorCode.FORBIDDEN);
    await steady.succeeded(10);
    await steady.stop();
    expect(steady.failed()).toEqual([]);
  });

  it('deeply nested MessagePack (a million arrays in a PING) is BAD_FRAME before decoding, from three connections; memory stays flat', async () => {
    const { relay, steady } = await withSteadyCaller({});
    const bomb = pingWith(nestedArrays(1_000_000));
    const heapBefore = heapAfterGc();
    const attackers = await Promise.all([1, 2, 3].map(async () => track(await RawNode.open(relay.url))));
    for (let round = 0; round < 12; round++) for (const a of attackers) a.sendRaw(bomb);
    for (const a of attackers) {
      for (let i = 0; i < 12; i++) {
        const f = (await a.next(isError)) as ErrorFrame;
        expect(f.code).toBe(RelayErrorCode.BAD_FRAME);
        expect(f.message).toContain('nested deeper than 4');
      }
      expect(a.frames.filter(f => f.type === FrameType.Pong)).toEqual([]);
    }
    // Decoding one of them used to take 400 ms and 700 MiB; refused by a scan, they leave nothing behind.
    expect(heapAfterGc() - heapBefore).toBeLessThan(32 * 1024 * 1024);
    await steady.succeeded(10);
    await steady.stop();
    expect(steady.failed()).toEqual([]);
  });

  it('a trailing field of a hundred thousand values, or forty fields, is BAD_FRAME; a few unknown trailing fields are still accepted', async () => {
    const { relay, steady } = await withSteadyCaller({});
    const node = track(await RawNode.open(relay.url));
    const wide = new Uint8Array([0xdd, 0, 0x01, 0x86, 0xa0, ...new Uint8Array(100_000)]); // an array32 of 100,000 zeros
    node.sendRaw(pingWith(wide));
    const tooMany = (await node.next(isError)) as ErrorFrame;
    expect(tooMany.code).toBe(RelayErrorCode.BAD_FRAME);
    expect(tooMany.message).toMatch(/more than 20064 values/);
    node.sendRaw(new Uint8Array([0xdc, 0, 40, FrameType.Ping, ...new Uint8Array(39)]));
    const tooLong = (await node.next(isError)) as ErrorFrame;
    expect(tooLong.code).toBe(RelayErrorCode.BAD_FRAME);
    expect(tooLong.message).toContain('more than 32 top-level');
    node.sendRaw(new Uint8Array([0x93, FrameType.Ping, 0xa1, 0x78, 0x92, 1, 2])); // PING, "x", [1, 2]
    await node.next(f => f.type === FrameType.Pong);
    await steady.succeeded(5);
    await steady.stop();
    expect(steady.failed()).toEqual([]);
  });

  it('a frame over maxPayloadBytes that is not a valid frame gets PAYLOAD_TOO_LARGE (never decoded), correlated when its id can be read', async () => {
    const { relay, steady } = await withSteadyCaller({ maxPayloadBytes: 64 * 1024 });
    const node = track(await RawNode.hello(relay.url, 'big'));
    node.sendRaw(new Uint8Array(100 * 1024).fill(0xc1)); // not MessagePack at all
    expect(await node.next(isError)).toMatchObject({ id: 0, code: RelayErrorCode.PAYLOAD_TOO_LARGE });
    // A REQUEST head (type, id 77) followed by garbage: the id is read from the first bytes for the answer.
    const head = new Uint8Array([0x94, FrameType.Request, 77]);
    const big = new Uint8Array(100 * 1024).fill(0xc1);
    big.set(head);
    node.sendRaw(big);
    expect(await node.next(isError)).toMatchObject({ id: 77, code: RelayErrorCode.PAYLOAD_TOO_LARGE });
    expect(node.closeCode).toBeUndefined();
    await steady.succeeded(5);
    await steady.stop();
    expect(steady.failed()).toEqual([]);
  });
});
