import type { PacketMetadata } from '@nestjs/microservices';
import { decodePayload, encodePayload } from '@wsrelay/protocol';

/** Out-of-band values of a request or event, carried as one opaque `ext` blob. */
export interface PacketExt {
  headers?: Record<string, string>;
  metadata?: PacketMetadata;
}

export function encodeExt(headers?: Record<string, string>, metadata?: PacketMetadata): Uint8Array | null {
  if (headers === undefined && metadata === undefined) return null;
  return encodePayload({ h: headers, m: metadata });
}

export function decodeExt(bytes: Uint8Array | null): PacketExt {
  if (bytes === null) return {};
  const raw = decodePayload(bytes) as { h?: Record<string, string>; m?: PacketMetadata } | null;
  return { headers: raw?.h ?? undefined, metadata: raw?.m ?? undefined };
}
