import { type Frame, FRAME_NAMES, FrameType } from '@wsrelay/protocol';

/** The relay did not do what docs/protocol.md says: the message says what was expected and what came. */
export class Failure extends Error {
  override name = 'ConformanceFailure';
}

/** The scenario does not apply to this relay (an optional capability it does not speak): the message says why. */
export class Skipped extends Error {
  override name = 'ConformanceSkipped';
}

/** Fails with `reason` unless `condition` holds. */
export function check(condition: boolean, reason: string): asserts condition {
  if (!condition) throw new Failure(reason);
}

/** A frame as a failure names it: its type and the fields that tell it apart. */
export function describeFrame(f: Frame): string {
  const name = (FRAME_NAMES[f.type] ?? `type ${f.type as number}`).toUpperCase();
  switch (f.type) {
    case FrameType.Error:
      return `${name} id=${f.id} ${f.code} ${JSON.stringify(f.message)}`;
    case FrameType.Request:
      return `${name} id=${f.id} pattern=${JSON.stringify(f.pattern)}`;
    case FrameType.Event:
      return `${name} id=${f.id} pattern=${JSON.stringify(f.pattern)}${f.flags ? ` flags=${f.flags}` : ''}`;
    case FrameType.Response:
      return `${name} id=${f.id} flags=${f.flags}${f.payload === null ? '' : ` payload=${hex(f.payload)}`}`;
    case FrameType.Ack:
      return `${name} id=${f.id} recipients=${f.recipients}`;
    case FrameType.Credit:
      return `${name} id=${f.id} credit=${f.credit}`;
    case FrameType.Welcome:
      return `${name} nodeId=${JSON.stringify(f.nodeId)}`;
    case FrameType.GoAway:
      return `${name} ${JSON.stringify(f.reason)}`;
    default:
      return 'id' in f ? `${name} id=${f.id}` : name;
  }
}

/** Bytes as a failure shows them: hex, cut after 24 bytes. */
export function hex(bytes: Uint8Array): string {
  const shown = Buffer.from(bytes.subarray(0, 24)).toString('hex');
  return bytes.length > 24 ? `${shown}... (${bytes.length} bytes)` : shown;
}

export function sameBytes(a: Uint8Array | null | undefined, b: Uint8Array | null | undefined): boolean {
  if (a == null || b == null) return a == null && b == null;
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}
