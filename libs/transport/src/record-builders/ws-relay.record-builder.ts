/** Per-message options carried by a `WsRelayRecord`. */
export interface WsRelayRecordOptions {
  /** String headers, readable by the handler through `WsRelayContext.getHeaders()`. */
  headers?: Record<string, string>;
  /** Send to this node only (RPC), instead of round-robin. */
  nodeId?: string;
  /** Deadline of this call, in ms (overrides the client's `timeoutMs`). */
  timeoutMs?: number;
  /** Events: when `emit()` completes (overrides the client's `eventAck`). */
  ack?: WsRelayEventAckMode;
}

/**
 * When an `emit()` completes: `'relay'` once the relay has accepted the event
 * and counted its recipients; `'handlers'` once every receiving handler has
 * finished (failing with HANDLER_FAILED if one threw), an event whose queue
 * member leaves or does not confirm in time being delivered to another one.
 */
export type WsRelayEventAckMode = 'relay' | 'handlers';

/** Data plus per-message options; pass it as the data of `send()` / `emit()`. */
export class WsRelayRecord<TData = unknown> {
  constructor(
    readonly data: TData,
    readonly options: WsRelayRecordOptions = {},
  ) {}
}

/**
 * Builds a `WsRelayRecord`:
 * `new WsRelayRecordBuilder(data).setHeaders({...}).setNodeId(id).setTimeout(ms).setAck('handlers').build()`.
 */
export class WsRelayRecordBuilder<TData = unknown> {
  private options: WsRelayRecordOptions = {};

  constructor(private data?: TData) {}

  setData(data: TData): this {
    this.data = data;
    return this;
  }

  setHeaders(headers: Record<string, string>): this {
    this.options = { ...this.options, headers: { ...this.options.headers, ...headers } };
    return this;
  }

  setNodeId(nodeId: string): this {
    this.options = { ...this.options, nodeId };
    return this;
  }

  setTimeout(timeoutMs: number): this {
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0 || timeoutMs > 0x7fff_ffff) {
      throw new TypeError(`WsRelayRecordBuilder: timeout must be a positive integer of ms, got ${timeoutMs}`);
    }
    this.options = { ...this.options, timeoutMs };
    return this;
  }

  /** Events: complete `emit()` once the relay accepted it (`'relay'`) or once every handler finished (`'handlers'`). */
  setAck(ack: WsRelayEventAckMode): this {
    if (ack !== 'relay' && ack !== 'handlers') {
      throw new TypeError(`WsRelayRecordBuilder: ack must be 'relay' or 'handlers', got ${String(ack)}`);
    }
    this.options = { ...this.options, ack };
    return this;
  }

  build(): WsRelayRecord<TData> {
    return new WsRelayRecord(this.data as TData, this.options);
  }
}
