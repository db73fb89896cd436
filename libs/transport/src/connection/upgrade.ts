import { CloseCode, RelayError, RelayErrorCode } from '@wsrelay/protocol';
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';

/** HTTP statuses a relay refuses an upgrade with, and the codes they map to. */
const UPGRADE_REFUSALS: Record<number, RelayErrorCode> = {
  401: RelayErrorCode.UNAUTHORIZED,
  403: RelayErrorCode.FORBIDDEN,
  503: RelayErrorCode.RELAY_UNAVAILABLE,
};

/** The error an upgrade the relay refused with an HTTP status stands for, with the relay's reason (its body). */
export function refusalOf(res: IncomingMessage): Promise<RelayError> {
  return new Promise(resolve => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      if (body.length < 1024) body += chunk;
    });
    res.on('end', () => {
      const code = UPGRADE_REFUSALS[res.statusCode ?? 0] ?? RelayErrorCode.RELAY_UNAVAILABLE;
      resolve(new RelayError(code, body.trim() || `The relay refused the connection with HTTP ${res.statusCode}.`));
    });
    res.on('error', () => undefined);
  });
}

/** Closes a socket (if any) and resolves once it is closed; a relay that never answers the close handshake does not hold us up. */
export function closeSocket(socket: WebSocket | undefined): Promise<void> {
  if (socket === undefined || socket.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise<void>(resolve => {
    socket.once('close', () => resolve());
    if (socket.readyState === WebSocket.CONNECTING) {
      socket.terminate();
    } else {
      socket.close(CloseCode.NORMAL, 'node closing');
      setTimeout(() => socket.terminate(), 1000).unref();
    }
  });
}
