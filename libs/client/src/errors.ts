import { quote, RelayError, RelayErrorCode } from '@wsrelay/protocol';

/**
 * The client's own failures, worded as the Nest transport words them
 * (@wsrelay/protocol's RelayErrorMessages, which this bundle leaves out for
 * its size: most of its messages are the relay's).
 */
export const clientErrors = {
  closed: () => new RelayError(RelayErrorCode.CLOSED, 'The client was closed.'),
  /** No session came up within a call's deadline; `detail` says why the last attempt failed. */
  unavailable: (detail?: string) => new RelayError(RelayErrorCode.RELAY_UNAVAILABLE, `No relay connection${detail ? `: ${detail}` : '.'}`),
  lost: (code: number, reason: string) =>
    new RelayError(
      RelayErrorCode.RELAY_UNAVAILABLE,
      `The relay connection was lost while the request was in flight.${reason ? ` (${code}: ${reason})` : ''}`,
    ),
  /** The relay never answered, a second past the deadline. */
  timeout: (pattern: string, timeoutMs: number) =>
    new RelayError(RelayErrorCode.TIMEOUT, `${quote(pattern)} did not complete within ${timeoutMs} ms. (no answer from the relay)`),
  versionNotSpoken: (version: number, supported: readonly number[]) =>
    new RelayError(
      RelayErrorCode.PROTOCOL_MISMATCH,
      `The relay chose protocol version ${version}, which this node does not speak (it speaks ${supported.join(', ')}).`,
    ),
  refused: (code: RelayErrorCode, message: string) => new RelayError(code, message),
  unencodable: (err: unknown) =>
    new RelayError(RelayErrorCode.BAD_FRAME, `Bad frame: data cannot be encoded as MessagePack (${(err as Error).message}).`, {
      cause: err,
    }),
  unreadable: (what: string, err: unknown) =>
    new RelayError(RelayErrorCode.BAD_FRAME, `Bad frame: ${what} is not MessagePack (${(err as Error).message}).`, { cause: err }),
};

/** HTTP statuses a relay refuses an upgrade with, and their codes (only `ws` tells them; a browser hides the status). */
const UPGRADE_REFUSALS: Readonly<Record<string, RelayErrorCode>> = {
  401: RelayErrorCode.UNAUTHORIZED,
  403: RelayErrorCode.FORBIDDEN,
  429: RelayErrorCode.RATE_LIMITED,
  503: RelayErrorCode.RELAY_UNAVAILABLE,
};

/** The refusal a socket's error event names (`ws`: "Unexpected server response: 401"), or undefined. */
export function upgradeRefusal(message: string | undefined): RelayError | undefined {
  const status = /Unexpected server response: (\d+)/.exec(message ?? '')?.[1];
  const code = status === undefined ? undefined : UPGRADE_REFUSALS[status];
  return code === undefined ? undefined : new RelayError(code, `The relay refused the connection with HTTP ${status}.`);
}

/** What an aborted signal rejects with: its reason, or CLOSED when it has none. */
export function abortReason(signal: AbortSignal | undefined): unknown {
  return signal?.reason ?? clientErrors.closed();
}
