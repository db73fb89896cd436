import { type EventFrame, EventFlag, FrameType } from '@wsrelay/protocol';

/** What an event carries wherever it goes: subject, payload, ext. */
export type EventSource = Pick<EventFrame, 'pattern' | 'payload' | 'ext'>;

/** Code of a failed delivery whose handler threw (its error goes along). */
export const HANDLER_ERROR = 'HANDLER_ERROR';

/** The EVENT a node gets: `source` under `id`, as from `peer`; with `attempt`, a copy that wants a HANDLED. */
export function eventFrame(source: EventSource, id: number, peer: string | null, claims: Uint8Array | null, attempt?: number): EventFrame {
  const { pattern, payload, ext } = source;
  const frame: EventFrame = { type: FrameType.Event, id, pattern, payload, peer, ext, claims };
  if (attempt !== undefined) {
    frame.flags = EventFlag.ACK_HANDLERS;
    frame.attempt = attempt;
  }
  return frame;
}
