import { Inject, Logger, UseFilters, UseGuards, UseInterceptors } from '@nestjs/common';
import {
  type OnGatewayConnection,
  type OnGatewayDisconnect,
  type OnGatewayInit,
  SubscribeMessage,
  WebSocketGateway,
} from '@nestjs/websockets';
import { GATEWAY_OPTIONS } from '@nestjs/websockets/constants.js';
import type {
  CancelFrame,
  DiscoverFrame,
  EventFrame,
  HelloFrame,
  RequestFrame,
  ResponseFrame,
  WaitFrame,
} from '@wsrelay/protocol';
import type WebSocket from 'ws';
import { RelayExceptionFilter } from './filters/relay-exception.filter.js';
import { EstablishedSessionGuard } from './guards/established-session.guard.js';
import { EventAckInterceptor } from './interceptors/event-ack.interceptor.js';
import type { ResolvedRelayOptions } from './interfaces/relay-options.interface.js';
import { RELAY_ADAPTER_MARK, RELAY_ADAPTER_SETTINGS, RELAY_OPTIONS } from './relay.constants.js';
import { REFUSED_EVENT, type RefusedFrame } from './relay-ws.adapter.js';
import { RelayRouter } from './routing/relay-router.js';
import { type Session, sessionOf } from './session.js';

const MISSING_ADAPTER =
  'RelayModule needs the relay WebSocket adapter: call app.useWebSocketAdapter(new RelayWsAdapter(app)) before app.listen(). Every connection is refused until then.';

/**
 * The relay's WebSocket gateway: one handler per frame type. Handlers take
 * the raw `(socket, frame)` arguments (no parameter decorators), so Nest does
 * no per-frame argument work beyond guards, interceptors and filters.
 */
@WebSocketGateway()
@UseFilters(RelayExceptionFilter)
export class RelayGateway implements OnGatewayInit, OnGatewayConnection, OnGatewayDisconnect {
  private readonly logger = new Logger(RelayGateway.name);
  private misconfigured = false;

  constructor(
    @Inject(RELAY_OPTIONS) private readonly options: ResolvedRelayOptions,
    private readonly router: RelayRouter,
  ) {
    // Gateway options are read from class metadata when the app initializes,
    // after providers are built, so the module's options can still set them.
    Reflect.defineMetadata(
      GATEWAY_OPTIONS,
      {
        path: options.path,
        maxPayload: options.maxPayloadBytes * 2,
        perMessageDeflate: false,
        [RELAY_ADAPTER_SETTINGS]: { maxPayloadBytes: options.maxPayloadBytes },
      },
      RelayGateway,
    );
  }

  afterInit(server: Record<symbol, unknown>): void {
    // Thrown here, the error would escape Nest's rxjs init stream as an
    // uncaught exception; instead the relay says so and refuses every socket.
    this.misconfigured = server[RELAY_ADAPTER_MARK] !== true;
    if (this.misconfigured) {
      this.logger.error(MISSING_ADAPTER);
      return;
    }
    this.router.startHeartbeat();
    this.logger.log(`Relay ${this.options.relayId} accepting nodes on path ${this.options.path}`);
  }

  handleConnection(socket: WebSocket): void {
    if (this.misconfigured) {
      socket.close(1011, 'relay misconfigured: it needs RelayWsAdapter');
      return;
    }
    this.router.accept(socket);
  }

  handleDisconnect(socket: WebSocket): void {
    this.router.drop(socket);
  }

  @SubscribeMessage('hello')
  onHello(socket: WebSocket, frame: HelloFrame): void {
    this.router.hello(this.session(socket), frame);
  }

  @UseGuards(EstablishedSessionGuard)
  @SubscribeMessage('request')
  onRequest(socket: WebSocket, frame: RequestFrame): void {
    this.router.request(this.session(socket), frame);
  }

  @UseGuards(EstablishedSessionGuard)
  @SubscribeMessage('response')
  onResponse(socket: WebSocket, frame: ResponseFrame): void {
    this.router.response(this.session(socket), frame);
  }

  @UseGuards(EstablishedSessionGuard)
  @SubscribeMessage('cancel')
  onCancel(socket: WebSocket, frame: CancelFrame): void {
    this.router.cancel(this.session(socket), frame);
  }

  @UseGuards(EstablishedSessionGuard)
  @UseInterceptors(EventAckInterceptor)
  @SubscribeMessage('event')
  onEvent(socket: WebSocket, frame: EventFrame): number {
    return this.router.publish(this.session(socket), frame);
  }

  @UseGuards(EstablishedSessionGuard)
  @SubscribeMessage('wait')
  onWait(socket: WebSocket, frame: WaitFrame): void {
    this.router.wait(this.session(socket), frame);
  }

  @UseGuards(EstablishedSessionGuard)
  @SubscribeMessage('discover')
  onDiscover(socket: WebSocket, frame: DiscoverFrame): void {
    this.router.discover(this.session(socket), frame);
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
    return sessionOf(socket) ?? this.router.accept(socket);
  }
}
