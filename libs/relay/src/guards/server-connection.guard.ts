import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { type Frame, FrameType, RelayError, RelayErrorCode, RelayErrorMessages } from '@wsrelay/protocol';
import type WebSocket from 'ws';
import { sessionOf } from '../session.js';

/**
 * Only server connections (as `isServerConnection` classified them at the
 * upgrade) may announce patterns or subscriptions in HELLO, or answer
 * requests; a passive client gets FORBIDDEN and nothing is routed.
 */
@Injectable()
export class ServerConnectionGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const ws = context.switchToWs();
    if (sessionOf(ws.getClient<WebSocket>())?.identity.isServer) return true;
    const frame = ws.getData<Frame>();
    if (frame.type === FrameType.Hello) {
      if (frame.patterns.length === 0 && frame.events.length === 0) return true;
      throw new RelayError(RelayErrorCode.FORBIDDEN, RelayErrorMessages.notServer('serve patterns or subscribe to events'));
    }
    throw new RelayError(RelayErrorCode.FORBIDDEN, RelayErrorMessages.notServer('answer requests'));
  }
}
