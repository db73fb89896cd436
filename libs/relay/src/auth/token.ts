import type { IncomingMessage } from 'node:http';

/** Subprotocol prefix a browser uses to carry its token (it cannot set headers). */
export const TOKEN_PROTOCOL_PREFIX = 'access_token.';

/**
 * The bearer token of an upgrade request: `Authorization: Bearer …`, then
 * `?token=…`, then a `access_token.<jwt>` WebSocket subprotocol.
 */
export function tokenOf(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
  }
  const url = req.url ?? '';
  const q = url.indexOf('?');
  if (q !== -1) {
    const token = new URLSearchParams(url.slice(q + 1)).get('token');
    if (token) return token;
  }
  const protocols = req.headers['sec-websocket-protocol'];
  if (protocols !== undefined) {
    for (const p of protocols.split(',')) {
      const t = p.trim();
      if (t.startsWith(TOKEN_PROTOCOL_PREFIX) && t.length > TOKEN_PROTOCOL_PREFIX.length) {
        return t.slice(TOKEN_PROTOCOL_PREFIX.length);
      }
    }
  }
  return undefined;
}

/**
 * The subprotocol the relay selects: the first one offered that is not a
 * token carrier (a token is never echoed back), or none.
 */
export function selectProtocol(protocols: Set<string>): string | false {
  for (const p of protocols) if (!p.startsWith(TOKEN_PROTOCOL_PREFIX)) return p;
  return false;
}
