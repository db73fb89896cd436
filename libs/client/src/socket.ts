/**
 * What the client needs of a WebSocket: the browser's, the one of Node 22+,
 * Deno and Bun, or the `ws` package's (on Node 20, which has none).
 */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: ArrayBuffer): void;
  close(code?: number, reason?: string): void;
  /** The listener reads the events as SocketEvents describes them. */
  addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (event: unknown) => void): void;
}

/** A WebSocket class, such as `globalThis.WebSocket` or the `ws` package's default export. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** What the event listeners read of the events (of every implementation above). */
export interface SocketEvents {
  message: { data: unknown };
  close: { code: number; reason: string };
  /** `message` is set by `ws` (e.g. "Unexpected server response: 401"); a browser says nothing. */
  error: { message?: string };
}

/** `readyState` of an open socket. */
export const OPEN = 1;
/** `readyState` of a closed socket. */
export const CLOSED = 3;

/** Subprotocol offered on every connection (a browser needs one the relay selects when it also offers a token). */
export const WSRELAY_PROTOCOL = 'wsrelay.v1';

/** The subprotocols offered: `wsrelay.v1`, and the token as `access_token.<jwt>`. */
export function subprotocols(token: string | undefined): string[] {
  return token ? [WSRELAY_PROTOCOL, `access_token.${token}`] : [WSRELAY_PROTOCOL];
}

/** The bytes of a binary message (an ArrayBuffer with `binaryType` 'arraybuffer'); undefined for a text message. */
export function messageBytes(data: unknown): Uint8Array | undefined {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return undefined;
}
