import { RELAY_ERROR_STATUS, RelayError } from '@wsrelay/protocol';

/**
 * The `outcome` label of a call or an emit that failed with `err`, from a
 * bounded set: a RelayError code this version knows (also when a provider
 * answered with one, as a stream that overflowed does); `relay_error` for a
 * code it does not know (a newer relay's); `client_error` for an Error raised
 * in this process (a serializer or deserializer that threw); `handler_error`
 * for what a provider's handler answered with (it arrives as the value the
 * provider sent, not as an Error).
 */
export function outcomeOf(err: unknown): string {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  if (typeof code === 'string' && Object.hasOwn(RELAY_ERROR_STATUS, code)) return code;
  if (err instanceof RelayError) return 'relay_error';
  return err instanceof Error ? 'client_error' : 'handler_error';
}
