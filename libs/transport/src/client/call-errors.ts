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

export function noop(): void {}
