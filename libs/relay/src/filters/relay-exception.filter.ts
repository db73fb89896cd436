import { type ArgumentsHost, Catch, Logger, type WsExceptionFilter } from '@nestjs/common';
import { WsException } from '@nestjs/websockets';
import { RelayError, RelayErrorCode, RelayErrorMessages } from '@wsrelay/protocol';
import type WebSocket from 'ws';
import { RelayRouter } from '../routing/relay-router.js';
import { sessionOf } from '../session.js';

/**
 * Turns whatever a gateway handler, guard or interceptor throws into an ERROR
 * frame for the sender (binary, correlated to the frame's id when it has one).
 */
@Catch()
export class RelayExceptionFilter implements WsExceptionFilter {
  private readonly logger = new Logger(RelayExceptionFilter.name);

  constructor(private readonly router: RelayRouter) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const ws = host.switchToWs();
    const socket = ws.getClient<WebSocket>();
    const data = ws.getData<{ id?: unknown } | undefined>();
    const id = typeof data?.id === 'number' ? data.id : 0;
    this.router.refuse(sessionOf(socket), socket, id, toRelayError(exception, this.logger));
  }
}

/** What the sender is told of a failure; anything but a RelayError or WsException is a relay fault, logged, and INTERNAL. */
export function toRelayError(exception: unknown, logger: Logger): RelayError {
  if (exception instanceof RelayError) return exception;
  if (exception instanceof WsException) {
    return new RelayError(RelayErrorCode.BAD_FRAME, RelayErrorMessages.badFrame(exception.message));
  }
  logger.error(exception);
  return new RelayError(RelayErrorCode.INTERNAL, RelayErrorMessages.internal());
}
