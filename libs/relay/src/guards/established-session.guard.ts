import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { RelayError, RelayErrorCode, RelayErrorMessages } from '@wsrelay/protocol';
import type WebSocket from 'ws';
import { sessionOf } from '../session.js';

/** Every frame but HELLO needs a session established by HELLO. */
@Injectable()
export class EstablishedSessionGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const session = sessionOf(context.switchToWs().getClient<WebSocket>());
    if (session?.established) return true;
    throw new RelayError(RelayErrorCode.BAD_FRAME, RelayErrorMessages.badFrame(RelayErrorMessages.helloFirst()));
  }
}
