import { type CallHandler, type ExecutionContext, Inject, Injectable, type NestInterceptor } from '@nestjs/common';
import type { EventFrame } from '@wsrelay/protocol';
import { map, type Observable } from 'rxjs';
import type WebSocket from 'ws';
import { RelayCore } from '../core/relay-core.js';

/**
 * Acknowledges every event with the number of nodes it reached (0 included);
 * an event with handler acks (undefined) is acknowledged once its handlers have answered.
 */
@Injectable()
export class EventAckInterceptor implements NestInterceptor<number | undefined, void> {
  constructor(@Inject(RelayCore) private readonly core: RelayCore) {}

  intercept(context: ExecutionContext, next: CallHandler<number | undefined>): Observable<void> {
    const ws = context.switchToWs();
    const session = this.core.sessionOf(ws.getClient<WebSocket>());
    const frame = ws.getData<EventFrame>();
    return next.handle().pipe(
      map(recipients => {
        if (session !== undefined) this.core.acknowledge(session, frame.id, recipients);
      }),
    );
  }
}
