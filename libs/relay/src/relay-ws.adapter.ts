import type { INestApplicationContext } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import type { MessageMappingProperties } from '@nestjs/websockets';
import {
  type Frame,
  FRAME_NAMES,
  FrameCodec,
  FrameError,
  FrameType,
  RelayError,
  RelayErrorCode,
  RelayErrorMessages,
} from '@wsrelay/protocol';
import { isObservable, type Observable } from 'rxjs';
import type WebSocket from 'ws';
import { DEFAULT_MAX_PAYLOAD_BYTES, RELAY_ADAPTER_MARK, RELAY_ADAPTER_SETTINGS } from './relay.constants.js';

/** Gateway message name of a frame the adapter refused before routing. */
export const REFUSED_EVENT = 'refused';

/** What the gateway receives for a refused frame. */
export interface RefusedFrame {
  id: number;
  error: RelayError;
}

/** Settings the relay gateway passes to this adapter through its gateway options. */
export interface RelayAdapterSettings {
  maxPayloadBytes: number;
}

const INBOUND = new Set<FrameType>([
  FrameType.Hello,
  FrameType.Request,
  FrameType.Response,
  FrameType.Cancel,
  FrameType.Event,
  FrameType.Ping,
  FrameType.Pong,
  FrameType.Wait,
  FrameType.Discover,
]);

type Callback = (data: unknown, event: string) => unknown;

/**
 * The platform-ws adapter, speaking the relay's binary protocol: each frame
 * is decoded and validated once, then handed to the gateway handler named
 * after its type (guards, interceptors and filters apply as usual). A frame
 * that cannot be used goes to the `refused` handler instead.
 *
 * `app.useWebSocketAdapter(new RelayWsAdapter(app))`
 */
export class RelayWsAdapter extends WsAdapter {
  private maxPayloadBytes = DEFAULT_MAX_PAYLOAD_BYTES;
  private codec = new FrameCodec({ maxBinBytes: DEFAULT_MAX_PAYLOAD_BYTES * 2 });

  constructor(app?: INestApplicationContext | object) {
    super(app);
  }

  override create(port: number, options: Record<string, unknown> & { path?: string } = {}): unknown {
    const { [RELAY_ADAPTER_SETTINGS]: settings, ...wsOptions } = options;
    if (settings !== undefined) {
      this.maxPayloadBytes = (settings as RelayAdapterSettings).maxPayloadBytes;
      this.codec = new FrameCodec({ maxBinBytes: this.maxPayloadBytes * 2 });
    }
    const server = super.create(port, wsOptions) as Record<symbol, unknown>;
    server[RELAY_ADAPTER_MARK] = true;
    return server;
  }

  override bindMessageHandlers(
    client: WebSocket,
    handlers: MessageMappingProperties[],
    _transform: (data: unknown) => Observable<unknown>,
  ): void {
    const callbacks = new Map<string, Callback>(handlers.map(h => [h.message as string, h.callback as Callback]));
    client.on('message', (data: Buffer, isBinary: boolean) => {
      const { event, payload } = this.parse(data, isBinary);
      const callback = callbacks.get(event);
      if (callback !== undefined) this.run(callback, payload, event);
    });
  }

  private parse(data: Buffer, isBinary: boolean): { event: string; payload: unknown } {
    if (!isBinary) return refused(0, new FrameError(RelayErrorMessages.textFrame()));
    let frame: Frame;
    try {
      frame = this.codec.decode(data);
    } catch (err) {
      const e = err instanceof FrameError ? err : new FrameError(String(err));
      return refused(e.frameId, e);
    }
    if (data.length > this.maxPayloadBytes) {
      const id = 'id' in frame ? frame.id : 0;
      return refused(
        id,
        new RelayError(
          RelayErrorCode.PAYLOAD_TOO_LARGE,
          RelayErrorMessages.payloadTooLarge(data.length, this.maxPayloadBytes),
        ),
      );
    }
    if (!INBOUND.has(frame.type)) {
      return refused('id' in frame ? frame.id : 0, new FrameError(RelayErrorMessages.notInbound(FRAME_NAMES[frame.type])));
    }
    return { event: FRAME_NAMES[frame.type], payload: frame };
  }

  /** Runs a Nest handler; with interceptors it returns an Observable that must be subscribed to run. */
  private run(callback: Callback, payload: unknown, event: string): void {
    let result: unknown;
    try {
      result = callback(payload, event);
    } catch (err) {
      this.logger.error(err);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        r => this.drain(r),
        err => this.logger.error(err),
      );
    } else {
      this.drain(result);
    }
  }

  private drain(result: unknown): void {
    if (isObservable(result)) result.subscribe({ error: err => this.logger.error(err) });
  }
}

function refused(id: number, error: RelayError): { event: string; payload: RefusedFrame } {
  return { event: REFUSED_EVENT, payload: { id, error } };
}
