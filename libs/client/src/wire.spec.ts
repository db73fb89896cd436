import { describe, expect, it } from '@jest/globals';
import { FrameCodec, FrameType } from '@wsrelay/protocol';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeFrame, encodeFrame, type OutgoingFrame } from './wire.js';

interface Vectors {
  valid: Array<{ name: string; hex: string; frame: unknown }>;
}

/** The protocol's test vectors (docs/protocol.md, "Test vectors"): what the reference codec writes and reads. */
const vectors = JSON.parse(readFileSync(join(process.cwd(), 'libs/protocol/vectors/frames.json'), 'utf8')) as Vectors;
const codec = new FrameCodec();
const bytes = (hex: string) => new Uint8Array(Buffer.from(hex, 'hex'));

const SENT = new Set([
  FrameType.Hello,
  FrameType.Request,
  FrameType.Cancel,
  FrameType.Event,
  FrameType.Ping,
  FrameType.Pong,
  FrameType.Wait,
  FrameType.Discover,
  FrameType.Auth,
  FrameType.Handled,
  FrameType.Credit,
]);
const RECEIVED = new Set([
  FrameType.Welcome,
  FrameType.Response,
  FrameType.Event,
  FrameType.Ack,
  FrameType.Error,
  FrameType.Ping,
  FrameType.Pong,
  FrameType.Nodes,
  FrameType.TokenExpiring,
  FrameType.Authorized,
  FrameType.GoAway,
]);
const typeOf = (v: { frame: unknown }) => (v.frame as { type: FrameType }).type;

describe("the client's frames are the reference codec's bytes", () => {
  it.each(vectors.valid.filter(v => SENT.has(typeOf(v))).map(v => [v.name, v.hex] as const))('writes %s', (_name, hex) => {
    const frame = codec.decode(bytes(hex)) as OutgoingFrame;
    expect(Buffer.from(encodeFrame(frame)).toString('hex')).toBe(hex);
  });

  it.each(vectors.valid.filter(v => RECEIVED.has(typeOf(v))).map(v => [v.name, v.hex] as const))('reads %s', (_name, hex) => {
    expect(decodeFrame(bytes(hex))).toEqual(codec.decode(bytes(hex)));
  });

  it('writes a HELLO without capabilities, and an EVENT with flags 0, as the codec does', () => {
    const frames: OutgoingFrame[] = [
      { type: FrameType.Hello, versions: [1], nodeId: 'n', service: null, patterns: [], events: [], queue: null, caps: [] },
      { type: FrameType.Event, id: 1, pattern: 'a.b', payload: new Uint8Array([0xc0]), peer: null, ext: null, claims: null, flags: 0 },
    ];
    for (const f of frames) expect(new Uint8Array(encodeFrame(f))).toEqual(codec.encode(f));
  });

  it('ignores the frame types a client never gets, and refuses fields of the wrong kind', () => {
    expect(decodeFrame(codec.encode({ type: FrameType.Drain, id: 1 }))).toBeUndefined();
    expect(decodeFrame(new Uint8Array(encodeFrame({ type: FrameType.Ping })))).toEqual({ type: FrameType.Ping });
    expect(() => decodeFrame(new Uint8Array([0x93, 0x07, 0xa1, 0x78, 0x01]))).toThrow(/field 1 of a type 7 frame/);
    expect(() => decodeFrame(new Uint8Array([0x07]))).toThrow(/MessagePack array/);
  });
});
