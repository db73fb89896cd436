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

const MAX_DID = 0xffff_fffe;

/** Ids of event copies given to nodes, shared by the copies this relay drives and those it makes for others. */
export class DeliveryIds {
  private last = 0;

  constructor(private readonly taken: (id: number) => boolean) {}

  next(): number {
    do {
      this.last = this.last >= MAX_DID ? 1 : this.last + 1;
    } while (this.taken(this.last));
    return this.last;
  }
}
