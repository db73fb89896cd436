import { RelayError, RelayErrorCode, RelayErrorMessages } from '@wsrelay/protocol';

/** No relay connection could take a call. */
export function unavailable(): RelayError {
  return new RelayError(RelayErrorCode.RELAY_UNAVAILABLE, RelayErrorMessages.relayUnavailable());
}

/** A call's data that MessagePack cannot encode. */
export function unencodable(err: unknown): RelayError {
  return new RelayError(
    RelayErrorCode.BAD_FRAME,
    RelayErrorMessages.badFrame(`data cannot be encoded as MessagePack (${(err as Error).message})`),
    {
      cause: err,
    },
  );
}

/** Why a new call cannot go out now: too many in flight, or more unsent than the relay connection may hold; or null. */
export function overLimits(inFlight: number, maxInFlight: number, buffered: number, maxBuffered: number): RelayError | null {
  if (inFlight >= maxInFlight) return new RelayError(RelayErrorCode.RATE_LIMITED, RelayErrorMessages.tooManyInFlight(maxInFlight));
  if (buffered > maxBuffered) return new RelayError(RelayErrorCode.RATE_LIMITED, RelayErrorMessages.backedUp(buffered, maxBuffered));
  return null;
}

export function noop(): void {}
