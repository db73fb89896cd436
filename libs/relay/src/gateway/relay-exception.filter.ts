import { type ArgumentsHost, Catch, Inject, Logger, type WsExceptionFilter } from '@nestjs/common';
import { WsException } from '@nestjs/websockets';
import { RelayError, RelayErrorCode, RelayErrorMessages } from '@wsrelay/protocol';
import type WebSocket from 'ws';
import { RelayCore } from '../core/relay-core.js';
import { Refusals } from './refusals.js';

/**
 * Turns whatever a gateway handler, guard or interceptor throws into an ERROR
 * frame for the sender (binary, correlated to the frame's id when it has one).
 */
@Catch()
export class RelayExceptionFilter implements WsExceptionFilter {
  private readonly logger = new Logger(RelayExceptionFilter.name);

  constructor(
    @Inject(Refusals) private readonly refusals: Refusals,
    @Inject(RelayCore) private readonly core: RelayCore,
  ) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const ws = host.switchToWs();
    const socket = ws.getClient<WebSocket>();
    const data = ws.getData<{ id?: unknown } | undefined>();
    const id = typeof data?.id === 'number' ? data.id : 0;
    this.refusals.refuse(this.core.sessionOf(socket), socket, id, toRelayError(exception, this.logger));
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
