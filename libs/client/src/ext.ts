import { decodePayload, encodePayload } from '@wsrelay/protocol';

/**
 * A request's or event's `ext`: MessagePack `{ h?: headers, m?: metadata }`
 * (as the Nest transport writes it); null without headers.
 */
export function encodeExt(headers: Record<string, string> | undefined): Uint8Array | null {
  return headers === undefined ? null : encodePayload({ h: headers });
}

/** The headers of an `ext` (none when it has none, or cannot be read). */
export function decodeHeaders(ext: Uint8Array | null): Record<string, string> {
  if (ext === null) return {};
  try {
    const raw = decodePayload(ext) as { h?: Record<string, string> } | null;
    return raw?.h ?? {};
  } catch {
    return {};
  }
}
