/** `text` cut (at a character boundary, marked with "...") to at most `maxBytes` of UTF-8. */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (text.length * 3 <= maxBytes || Buffer.byteLength(text) <= maxBytes) return text;
  const buf = new Uint8Array(maxBytes - 3);
  const { read } = new TextEncoder().encodeInto(text, buf);
  return `${text.slice(0, read)}...`;
}

/** WebSocket close reasons are limited to 123 bytes of UTF-8. */
export function closeReason(reason: string): string {
  return truncateUtf8(reason, 123);
}
