import { DEFAULT_MAX_STRING_BYTES, RelayError, RelayErrorCode, RelayErrorMessages } from '@wsrelay/protocol';

/** Matches the relay's header bound (`maxStringBytes`), so an oversized pattern fails here, typed, at once. */
export function headerProblem(pattern: string, nodeId?: string): RelayError | null {
  // Checked on every call: no array per call, and the byte count only for a string that might be too long.
  if (overLimit(pattern)) return tooLong('pattern');
  if (nodeId !== undefined && overLimit(nodeId)) return tooLong('nodeId');
  return null;
}

function overLimit(value: string): boolean {
  return value.length * 3 > DEFAULT_MAX_STRING_BYTES && Buffer.byteLength(value) > DEFAULT_MAX_STRING_BYTES;
}

function tooLong(name: string): RelayError {
  return new RelayError(RelayErrorCode.BAD_FRAME, RelayErrorMessages.badFrame(`${name} is over ${DEFAULT_MAX_STRING_BYTES} bytes`));
}
