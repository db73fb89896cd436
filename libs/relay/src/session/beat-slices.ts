/**
 * How many slices a heartbeat beat is cut into: each connection belongs to
 * one and is looked at when its slice comes round, so the pings of a beat
 * (and the pongs they bring back) go out in small batches spread over the
 * beat instead of all at once.
 */
export const BEAT_SLICES = 16;

let sessionsMade = 0;

/** The slice of the next connection: connections take the slices in turn. */
export const nextBeatSlice = (): number => sessionsMade++ % BEAT_SLICES;
