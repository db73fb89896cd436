import { Inject, Logger, UseFilters, UseGuards, UseInterceptors } from '@nestjs/common';
import {
  type OnGatewayConnection,
  type OnGatewayDisconnect,
  type OnGatewayInit,
  SubscribeMessage,
  WebSocketGateway,
} from '@nestjs/websockets';
import type {
  AuthFrame,
  CancelFrame,
  DiscoverFrame,
  DrainFrame,
  EventFrame,
  HandledFrame,
  HelloFrame,
  RequestFrame,
  ResponseFrame,
  WaitFrame,
} from '@wsrelay/protocol';
import { CloseCode, RelayError, RelayErrorCode, RelayErrorMessages } from '@wsrelay/protocol';
import type { IncomingMessage } from 'node:http';
import type WebSocket from 'ws';
import { type ConnectionIdentity, OPEN_IDENTITY, RelayAuthService } from './auth/relay-auth.service.js';
import { RelayExceptionFilter } from './filters/relay-exception.filter.js';
import { EstablishedSessionGuard } from './guards/established-session.guard.js';
import { PermissionGuard, RequirePermission } from './guards/permission.guard.js';
import { ServerConnectionGuard } from './guards/server-connection.guard.js';
import { EventAckInterceptor } from './interceptors/event-ack.interceptor.js';
import type { ResolvedRelayOptions } from './interfaces/relay-options.interface.js';
import { CONNECTION_IDENTITY, DEFAULT_RELAY_PATH, RELAY_ADAPTER_MARK, RELAY_OPTIONS } from './relay.constants.js';
import { REFUSED_EVENT, type RefusedFrame } from './relay-ws.adapter.js';
import { RelayRouter } from './routing/relay-router.js';
import { type Session, sessionOf } from './session.js';

const MISSING_ADAPTER =
  'RelayModule needs the relay WebSocket adapter: call app.useWebSocketAdapter(new RelayWsAdapter(app)) before app.listen(). Every connection is refused until then.';

/**
 * The relay's WebSocket gateway: one handler per frame type. Handlers take
 * the raw `(socket, frame)` arguments (no parameter decorators), so Nest does
 * no per-frame argument work beyond guards, interceptors and filters.
 *
 * Authentication, origins and the connection limit are settled at the HTTP
 * upgrade (RelayWsAdapter); each frame then passes the guards: HELLO first
 * (EstablishedSessionGuard), server-only frames (ServerConnectionGuard) and
 * the token's permissions (PermissionGuard). The gateway's options (path,
 * frame size) come from RELAY_OPTIONS through the adapter.
 */
// The path here only matters without RelayWsAdapter (so the misconfiguration
// is reported on the usual path); the adapter applies the module's options.
@WebSocketGateway({ path: DEFAULT_RELAY_PATH })
@UseFilters(RelayExceptionFilter)
export class RelayGateway implements OnGatewayInit, OnGatewayConnection, OnGatewayDisconnect {
  private readonly logger = new Logger(RelayGateway.name);
  private misconfigured = false;

  constructor(
    @Inject(RELAY_OPTIONS) private readonly options: ResolvedRelayOptions,
    private readonly router: RelayRouter,
    private readonly auth: RelayAuthService,
  ) {}

  afterInit(server: Record<symbol, unknown>): void {
    // Thrown here, the error would escape Nest's rxjs init stream as an
    // uncaught exception; instead the relay says so and refuses every socket.
    this.misconfigured = server[RELAY_ADAPTER_MARK] !== true;
    if (this.misconfigured) {
      this.logger.error(MISSING_ADAPTER);
      return;
    }
    this.router.start();
    if (!this.auth.enabled) {
      this.logger.warn(
        'Authentication is off: any client that can reach this relay can join routing. Set the auth option before exposing it.',
      );
    }
    this.logger.log(`Relay ${this.options.relayId} accepting nodes on path ${this.options.path}`);
  }

  handleConnection(socket: WebSocket, request?: IncomingMessage): void {
    if (this.misconfigured) {
      socket.close(1011, 'relay misconfigured: it needs RelayWsAdapter');
      return;
    }
    const identity = (request as (IncomingMessage & { [CONNECTION_IDENTITY]?: ConnectionIdentity }) | undefined)?.[CONNECTION_IDENTITY];
    if (identity === undefined && this.auth.enabled) {
      // Only an upgrade the adapter's gate passed carries an identity.
      socket.close(CloseCode.UNAUTHORIZED, 'not authenticated');
      return;
    }
    this.router.accept(socket, identity ?? OPEN_IDENTITY);
  }

  handleDisconnect(socket: WebSocket): void {
    this.router.drop(socket);
  }

  @UseGuards(ServerConnectionGuard, PermissionGuard)
  @RequirePermission('announce')
  @SubscribeMessage('hello')
  onHello(socket: WebSocket, frame: HelloFrame): void {
    this.router.hello(this.session(socket), frame);
  }

  @UseGuards(EstablishedSessionGuard, PermissionGuard)
  @RequirePermission('call')
  @SubscribeMessage('request')
  onRequest(socket: WebSocket, frame: RequestFrame): void {
    const session = this.session(socket);
    // Remembered only as the current token judges it: a refresh may have landed since the guard ran.
    if (session.identity.permissions.allows('call', frame.pattern)) session.memo.rememberCall(frame.pattern);
    this.router.request(session, frame);
  }

  @UseGuards(EstablishedSessionGuard, ServerConnectionGuard)
  @SubscribeMessage('response')
  onResponse(socket: WebSocket, frame: ResponseFrame): void {
    const session = this.session(socket);
    session.memo.answers = true;
    this.router.response(session, frame);
  }

  @UseGuards(EstablishedSessionGuard, ServerConnectionGuard)
  @SubscribeMessage('handled')
  onHandled(socket: WebSocket, frame: HandledFrame): void {
    const session = this.session(socket);
    session.memo.answers = true;
    this.router.handled(session, frame);
  }

  @UseGuards(EstablishedSessionGuard)
  @SubscribeMessage('cancel')
  onCancel(socket: WebSocket, frame: CancelFrame): void {
    const session = this.session(socket);
    session.memo.cancels = true;
    this.router.cancel(session, frame);
  }

  @UseGuards(EstablishedSessionGuard, PermissionGuard)
  @RequirePermission('publish')
  @UseInterceptors(EventAckInterceptor)
  @SubscribeMessage('event')
  onEvent(socket: WebSocket, frame: EventFrame): number | undefined {
    const session = this.session(socket);
    if (session.identity.permissions.allows('publish', frame.pattern)) session.memo.rememberPublish(frame.pattern);
    return this.router.publish(session, frame);
  }

  @UseGuards(EstablishedSessionGuard, PermissionGuard)
  @RequirePermission('call')
  @SubscribeMessage('wait')
  onWait(socket: WebSocket, frame: WaitFrame): void {
    this.router.wait(this.session(socket), frame);
  }

  @UseGuards(EstablishedSessionGuard)
  @SubscribeMessage('discover')
  onDiscover(socket: WebSocket, frame: DiscoverFrame): void {
    this.router.discover(this.session(socket), frame);
  }

  @UseGuards(EstablishedSessionGuard)
  @SubscribeMessage('auth')
  onAuth(socket: WebSocket, frame: AuthFrame): Promise<void> {
    return this.router.reauth(this.session(socket), frame);
  }

  @UseGuards(EstablishedSessionGuard)
  @SubscribeMessage('drain')
  onDrain(socket: WebSocket, frame: DrainFrame): void {
    this.router.drain(this.session(socket), frame);
  }

  @SubscribeMessage('ping')
  onPing(socket: WebSocket): void {
    this.router.pong(this.session(socket));
  }

  @SubscribeMessage(REFUSED_EVENT)
  onRefused(socket: WebSocket, refused: RefusedFrame): void {
    this.router.refuse(sessionOf(socket), socket, refused.id, refused.error);
  }

  private session(socket: WebSocket): Session {
    const session = sessionOf(socket);
    if (session === undefined) throw new RelayError(RelayErrorCode.INTERNAL, RelayErrorMessages.internal());
    return session;
  }
}
