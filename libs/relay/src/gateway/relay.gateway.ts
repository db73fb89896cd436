import { Inject, Logger, UseFilters, UseGuards } from '@nestjs/common';
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
  CreditFrame,
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
import { type ConnectionIdentity, OPEN_IDENTITY, RelayAuthService } from '../auth/relay-auth.service.js';
import { RelayCore } from '../core/relay-core.js';
import type { ResolvedRelayOptions } from '../interfaces/relay-options.interface.js';
import { CONNECTION_IDENTITY, DEFAULT_RELAY_PATH, RELAY_ADAPTER_MARK, RELAY_OPTIONS } from '../relay.constants.js';
import type { Session } from '../session/session.js';
import { FramePolicyGuard } from './frame-policy.guard.js';
import { Refusals } from './refusals.js';
import { REFUSED_EVENT, type Refusal } from './refused.js';
import { RelayExceptionFilter } from './relay-exception.filter.js';

const MISSING_ADAPTER =
  'RelayModule needs the relay WebSocket adapter: call app.useWebSocketAdapter(new RelayWsAdapter(app)) before app.listen(). Every connection is refused until then.';

/**
 * The relay's WebSocket gateway: one handler per frame type, each handing
 * its frame to the relay core. Handlers take the raw `(socket, frame)`
 * arguments (no parameter decorators), so Nest does no per-frame argument
 * work beyond the guard, interceptors and filter.
 *
 * Authentication, origins and the connection limit are settled at the HTTP
 * upgrade (RelayWsAdapter); each frame then passes FramePolicyGuard (HELLO
 * first, server-only frames, the token's permissions). The adapter calls
 * these same handlers directly for the frequent frames (its hot path), after
 * the same policy; an enhancer added here makes it send that frame type
 * through Nest instead (see gateway/hot-path.ts).
 */
// The path here only matters without RelayWsAdapter (so the misconfiguration
// is reported on the usual path); the adapter applies the module's options.
@WebSocketGateway({ path: DEFAULT_RELAY_PATH })
@UseGuards(FramePolicyGuard)
@UseFilters(RelayExceptionFilter)
export class RelayGateway implements OnGatewayInit, OnGatewayConnection, OnGatewayDisconnect {
  private readonly logger = new Logger(RelayGateway.name);
  private misconfigured = false;

  constructor(
    @Inject(RELAY_OPTIONS) private readonly options: ResolvedRelayOptions,
    @Inject(RelayCore) private readonly core: RelayCore,
    @Inject(RelayAuthService) private readonly auth: RelayAuthService,
    @Inject(Refusals) private readonly refusals: Refusals,
  ) {}

  afterInit(server: Record<symbol, unknown>): void {
    // Thrown here, the error would escape Nest's rxjs init stream as an
    // uncaught exception; instead the relay says so and refuses every socket.
    this.misconfigured = server[RELAY_ADAPTER_MARK] !== true;
    if (this.misconfigured) {
      this.logger.error(MISSING_ADAPTER);
      return;
    }
    this.core.start();
    if (!this.auth.enabled) {
      const browsers =
        this.options.allowedOrigins === undefined
          ? "browsers only from pages of the relay's own host"
          : `browsers only from ${this.options.allowedOrigins.join(', ') || 'no origin'}`;
      this.logger.warn(
        `Authentication is off: any client that can reach this relay can join routing (${browsers}). Set the auth option before exposing it.`,
      );
    }
    this.logger.log(`Relay ${this.options.relayId} accepting nodes on path ${this.options.path}`);
  }

  handleConnection(socket: WebSocket, request?: IncomingMessage): void {
    if (this.misconfigured) {
      socket.close(1011, 'relay misconfigured: it needs RelayWsAdapter');
      return;
    }
    const identity = (request as { [CONNECTION_IDENTITY]?: ConnectionIdentity } | undefined)?.[CONNECTION_IDENTITY];
    if (identity === undefined && this.auth.enabled) {
      // Only an upgrade the adapter's gate passed carries an identity.
      socket.close(CloseCode.UNAUTHORIZED, 'not authenticated');
      return;
    }
    this.core.accept(socket, identity ?? OPEN_IDENTITY);
  }

  handleDisconnect(socket: WebSocket): void {
    this.core.drop(socket);
  }

  @SubscribeMessage('hello')
  onHello(socket: WebSocket, frame: HelloFrame): void {
    this.core.hello(this.session(socket), frame);
  }

  @SubscribeMessage('request')
  onRequest(socket: WebSocket, frame: RequestFrame): void {
    this.core.request(this.session(socket), frame);
  }

  @SubscribeMessage('response')
  onResponse(socket: WebSocket, frame: ResponseFrame): void {
    this.core.response(this.session(socket), frame);
  }

  @SubscribeMessage('handled')
  onHandled(socket: WebSocket, frame: HandledFrame): void {
    this.core.handled(this.session(socket), frame);
  }

  @SubscribeMessage('cancel')
  onCancel(socket: WebSocket, frame: CancelFrame): void {
    this.core.cancel(this.session(socket), frame);
  }

  @SubscribeMessage('credit')
  onCredit(socket: WebSocket, frame: CreditFrame): void {
    this.core.credit(this.session(socket), frame);
  }

  @SubscribeMessage('event')
  onEvent(socket: WebSocket, frame: EventFrame): void {
    this.core.publish(this.session(socket), frame);
  }

  @SubscribeMessage('wait')
  onWait(socket: WebSocket, frame: WaitFrame): void {
    this.core.wait(this.session(socket), frame);
  }

  @SubscribeMessage('discover')
  onDiscover(socket: WebSocket, frame: DiscoverFrame): void {
    this.core.discover(this.session(socket), frame);
  }

  @SubscribeMessage('auth')
  onAuth(socket: WebSocket, frame: AuthFrame): Promise<void> {
    return this.core.reauth(this.session(socket), frame);
  }

  @SubscribeMessage('drain')
  onDrain(socket: WebSocket, frame: DrainFrame): void {
    this.core.drainNode(this.session(socket), frame);
  }

  @SubscribeMessage('ping')
  onPing(socket: WebSocket): void {
    this.core.ping(this.session(socket));
  }

  @SubscribeMessage(REFUSED_EVENT)
  onRefused(socket: WebSocket, refused: Refusal): void {
    this.refusals.refuse(this.core.sessionOf(socket), socket, refused.id, refused.error);
  }

  private session(socket: WebSocket): Session {
    const session = this.core.sessionOf(socket);
    if (session === undefined) throw new RelayError(RelayErrorCode.INTERNAL, RelayErrorMessages.internal());
    return session;
  }
}
