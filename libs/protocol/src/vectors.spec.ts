import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FrameCodec } from './codec.js';
import { FrameError } from './errors.js';
import type { Frame } from './frames.js';

interface Vectors {
  valid: Array<{ name: string; hex: string; frame: unknown }>;
  invalid: Array<{ name: string; hex: string; code: string; id: number; reason: string }>;
}

/** The test vectors this package ships for other implementations (docs/protocol.md, "Test vectors"). */
const vectors = JSON.parse(readFileSync(join(process.cwd(), 'libs/protocol/vectors/frames.json'), 'utf8')) as Vectors;

const bytes = (hex: string) => new Uint8Array(Buffer.from(hex, 'hex'));

/** A vector's frame as the codec's: `{ bin: hex }` values as bytes. */
function fromJson(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(fromJson);
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (Object.keys(o).length === 1 && typeof o.bin === 'string') return bytes(o.bin);
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, fromJson(x)]));
  }
  return v;
}

describe('the protocol test vectors', () => {
  const codec = new FrameCodec();

  it('cover every frame type, and refusals of each kind', () => {
    const types = new Set(vectors.valid.map(v => (v.frame as { type: number }).type));
    expect([...types].sort((a, b) => a - b)).toEqual([...Array(20).keys()].map(i => i + 1));
    expect(vectors.invalid.length).toBeGreaterThanOrEqual(20);
  });

  it.each(vectors.valid.map(v => [v.name, v] as const))('valid: %s decodes to its frame and encodes to its bytes', (_name, v) => {
    const frame = fromJson(v.frame) as Frame;
    expect(codec.decode(bytes(v.hex))).toEqual(frame);
    expect(Buffer.from(codec.encode(frame)).toString('hex')).toBe(v.hex);
  });

  it.each(vectors.invalid.map(v => [v.name, v] as const))('invalid: %s is refused with its code, id and reason', (_name, v) => {
    let refused: unknown;
    try {
      codec.decode(bytes(v.hex));
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(FrameError);
    expect(refused).toMatchObject({ code: v.code, frameId: v.id, reason: v.reason });
  });
});
