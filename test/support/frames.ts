import { encodePayload, type Frame, FrameType, type RequestFrame } from '@wsrelay/protocol';
import { RelayCore } from '@wsrelay/relay';
import type { RunningRelay } from './harness.js';

/** A REQUEST for `pattern`: its payload `id` (MessagePack) unless given, to any provider unless `peer` names one. */
export function request(id: number, pattern: string, timeoutMs = 5000, o: { peer?: string; payload?: Uint8Array } = {}): RequestFrame {
  const { peer = null, payload = encodePayload(id) } = o;
  return { type: FrameType.Request, id, pattern, payload, timeoutMs, peer, ext: null, claims: null };
}

/** The relay's answer to a node's frame `id`: a RESPONSE (to a REQUEST), an ACK (to an EVENT, WAIT or DRAIN) or an ERROR. */
export const answerTo = (id: number) => (f: Frame) =>
  (f.type === FrameType.Response || f.type === FrameType.Ack || f.type === FrameType.Error) && f.id === id;

export const isRequest = (f: Frame) => f.type === FrameType.Request;

/** Requests a relay holds in its startup grace, across its tenants (what a leak would leave behind). */
export function heldAt(r: RunningRelay): number {
  return r.app.get(RelayCore).diagnostics().waits.held;
}
