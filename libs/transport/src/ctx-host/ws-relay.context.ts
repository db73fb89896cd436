import { BaseRpcContext, type PacketMetadata } from '@nestjs/microservices';
import { decodePayload } from '@wsrelay/protocol';

export type WsRelayContextArgs = [
  pattern: string,
  requestId: number,
  callerId: string | null,
  headers: Record<string, string>,
  deadline: number | undefined,
  claims: Uint8Array | null,
  metadata: PacketMetadata | undefined,
  attempt: number,
];

/** What gives a context its `signal`: the call being handled. */
export interface WsRelaySignalSource {
  readonly signal: AbortSignal;
}

/** The context of a request or event delivered by the relay, for `@Ctx()`. */
export class WsRelayContext extends BaseRpcContext<WsRelayContextArgs> {
  private claims: Record<string, unknown> | undefined | null = null;
  private ownSignal?: AbortSignal;

  constructor(
    args: WsRelayContextArgs,
    private readonly signalSource?: WsRelaySignalSource,
  ) {
    super(args);
  }

  /**
   * Aborted when the handler's work is no longer wanted: the caller
   * cancelled (unsubscribed) or its connection closed (reason: a RelayError
   * with code CLOSED), the call's deadline passed (TIMEOUT), or this
   * provider's relay connection was lost or it is shutting down
   * (PROVIDER_DISCONNECTED). Never aborted once the call has completed; pass
   * it to `fetch()`, database drivers and timers so an abandoned call stops.
   * For events it is never aborted.
   */
  get signal(): AbortSignal {
    return this.signalSource?.signal ?? (this.ownSignal ??= new AbortController().signal);
  }

  /** The pattern (for events, the concrete subject that was published). */
  getPattern(): string {
    return this.args[0];
  }

  /** The relay's id for this delivery (unique among the node's in-flight requests). */
  getRequestId(): number {
    return this.args[1];
  }

  /** The calling node's id as the relay saw it. */
  getCallerId(): string | null {
    return this.args[2];
  }

  /** Headers set with `WsRelayRecordBuilder.setHeaders()`. */
  getHeaders(): Record<string, string> {
    return this.args[3];
  }

  /** When the caller stops waiting, in this process's `Date.now()` clock; undefined for events. */
  getDeadline(): number | undefined {
    return this.args[4];
  }

  /** The caller's verified token claims; undefined when the relay runs without auth. */
  getClaims(): Record<string, unknown> | undefined {
    if (this.claims === null) {
      const raw = this.args[5];
      this.claims = raw ? (decodePayload(raw) as Record<string, unknown>) : undefined;
    }
    return this.claims;
  }

  /**
   * Which delivery of this event this is, from 1: with `ack: 'handlers'`, an
   * event whose queue member left or did not confirm in time is delivered
   * again to another member (1 for requests and first deliveries).
   */
  getAttempt(): number {
    return this.args[7];
  }

  /** Metadata the client attached with `setOnDispatchHook()`, as on Nest's TCP and Redis transports. */
  getMetadata(): PacketMetadata | undefined {
    return this.args[6];
  }
}
