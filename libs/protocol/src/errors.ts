/** Stable codes for failures made by the transport or the relay. */
export enum RelayErrorCode {
  MICROSERVICE_OFFLINE = 'MICROSERVICE_OFFLINE',
  PROVIDER_DISCONNECTED = 'PROVIDER_DISCONNECTED',
  TIMEOUT = 'TIMEOUT',
  RELAY_UNAVAILABLE = 'RELAY_UNAVAILABLE',
  BAD_FRAME = 'BAD_FRAME',
  PAYLOAD_TOO_LARGE = 'PAYLOAD_TOO_LARGE',
  PROTOCOL_MISMATCH = 'PROTOCOL_MISMATCH',
  NODE_ID_CONFLICT = 'NODE_ID_CONFLICT',
  UNAUTHORIZED = 'UNAUTHORIZED',
  FORBIDDEN = 'FORBIDDEN',
  RATE_LIMITED = 'RATE_LIMITED',
  CLOSED = 'CLOSED',
  INTERNAL = 'INTERNAL',
  HANDLER_FAILED = 'HANDLER_FAILED',
  SLOW_CONSUMER = 'SLOW_CONSUMER',
}

/** The HTTP-like status that goes with each code. */
export const RELAY_ERROR_STATUS: Readonly<Record<RelayErrorCode, number>> = {
  [RelayErrorCode.MICROSERVICE_OFFLINE]: 503,
  [RelayErrorCode.PROVIDER_DISCONNECTED]: 502,
  [RelayErrorCode.TIMEOUT]: 504,
  [RelayErrorCode.RELAY_UNAVAILABLE]: 503,
  [RelayErrorCode.BAD_FRAME]: 400,
  [RelayErrorCode.PAYLOAD_TOO_LARGE]: 413,
  [RelayErrorCode.PROTOCOL_MISMATCH]: 426,
  [RelayErrorCode.NODE_ID_CONFLICT]: 409,
  [RelayErrorCode.UNAUTHORIZED]: 401,
  [RelayErrorCode.FORBIDDEN]: 403,
  [RelayErrorCode.RATE_LIMITED]: 429,
  [RelayErrorCode.CLOSED]: 499,
  [RelayErrorCode.INTERNAL]: 500,
  [RelayErrorCode.HANDLER_FAILED]: 500,
  [RelayErrorCode.SLOW_CONSUMER]: 507,
};

/** Longest piece of peer input (a pattern, a node id) an error message quotes, in characters. */
const MAX_QUOTED = 200;
/** Most items of a peer's list (versions, subscriptions) an error message names. */
const MAX_LISTED = 5;

/**
 * Peer input as an error message quotes it: cut to MAX_QUOTED characters, so
 * an answer never outgrows the header strings every node can decode
 * (`maxStringBytes`) nor the input that caused it.
 */
export function quote(value: string): string {
  return value.length <= MAX_QUOTED ? `"${value}"` : `"${value.slice(0, MAX_QUOTED)}..." (${value.length} characters)`;
}

/** A peer's list as an error message names it: the first MAX_LISTED items and how many more. */
export function listed(items: readonly unknown[]): string {
  const shown = items.slice(0, MAX_LISTED).map(String);
  return items.length > MAX_LISTED ? `${shown.join(', ')} and ${items.length - MAX_LISTED} more` : shown.join(', ');
}

/** Message texts, kept in one place so every side words a failure the same way. */
export const RelayErrorMessages = {
  microserviceOffline: (pattern: string, target?: string | null) =>
    target != null
      ? `Node ${quote(target)} is not online or does not serve pattern ${quote(pattern)}.`
      : `No microservice is online for pattern ${quote(pattern)}.`,
  providerDisconnected: (pattern: string) => `The microservice handling ${quote(pattern)} disconnected before it completed.`,
  timeout: (pattern: string, timeoutMs: number) => `${quote(pattern)} did not complete within ${timeoutMs} ms.`,
  waitTimeout: (pattern: string, timeoutMs: number) => `No microservice for ${quote(pattern)} came online within ${timeoutMs} ms.`,
  relayUnavailable: (detail?: string) => `No relay connection${detail ? `: ${detail}` : '.'}`,
  relayLost: () => 'The relay connection was lost while the request was in flight.',
  badFrame: (reason: string) => `Bad frame: ${reason}.`,
  payloadTooLarge: (size: number, max: number) => `Frame of ${size} bytes is over the relay's limit of ${max} bytes.`,
  protocolMismatch: (offered: readonly number[], supported: readonly number[]) =>
    `Protocol version ${listed(offered) || 'none'} is not supported; the relay speaks ${supported.join(', ')}.`,
  nodeIdConflict: (nodeId: string) => `Node id ${quote(nodeId)} is already held by another live connection.`,
  nodeIdOwned: (nodeId: string) => `Node id ${quote(nodeId)} belongs to another token subject.`,
  unauthorized: (reason: string) => `Unauthorized: ${reason}.`,
  notServer: (what: string) => `Forbidden: this connection is a passive client; only server connections may ${what}.`,
  forbidden: (action: string, subject: string) => `Forbidden: the token does not permit ${action} ${quote(subject)}.`,
  tooManyInFlight: (limit: number) =>
    `Rate limited: ${limit} requests are already in flight on this connection; wait for some to complete.`,
  tokenExpired: () => 'token expired',
  closed: () => 'The client was closed.',
  internal: () => 'The relay failed to handle the frame.',
  helloFirst: () => 'HELLO must be the first frame of a connection',
  helloTwice: () => 'HELLO was already received on this connection',
  textFrame: () => 'text frames are not part of the protocol; send binary MessagePack',
  notInbound: (name: string) => `a ${name} frame is never sent to the relay`,
  tooManyBeforeWelcome: (limit: number) => `Rate limited: over ${limit} frames sent before the relay answered HELLO; wait for WELCOME.`,
  backedUp: (buffered: number, max: number) =>
    `Rate limited: ${buffered} bytes are waiting to be sent to the relay (over ${max}); the relay is not reading fast enough.`,
  slowConsumer: (buffered: number, max: number) => `slow consumer: ${buffered} bytes unsent (budget ${max})`,
  handlerFailed: (failed: number, recipients: number) => `The event was not handled by ${failed} of ${recipients} recipient(s).`,
  goingAway: () => 'the relay is shutting down',
  tooMuchRetained: (max: number) =>
    `Rate limited: this connection's unanswered events with handler acks already keep ${max} bytes at the relay; wait for some to complete.`,
  tooMuchHeld: (max: number) =>
    `Rate limited: this connection's calls waiting for a provider (the relay just started) already keep ${max} bytes at the relay; wait for some to complete.`,
  duplicateId: (id: number) => `request id ${id} is already in flight on this connection`,
  tooManyConnectionsFrom: (source: string, limit: number) =>
    `Rate limited: ${source} already has ${limit} connections to this relay, its limit; close one or retry later.`,
  tooManyHandshakesFrom: (source: string, limit: number) =>
    `Rate limited: ${source} already has ${limit} connections that have not completed HELLO; retry once they have (or have timed out).`,
  originNotAllowed: (origin: string, sameHostOnly: boolean) =>
    sameHostOnly
      ? `Forbidden: origin ${origin} is not allowed: without authentication or allowedOrigins, the relay admits browsers only from its own host.`
      : `Forbidden: origin ${origin} is not allowed.`,
  tooManyRefusedRefreshes: (limit: number) => `${limit} token refreshes (AUTH) were refused on this connection`,
  relayBudgetFull: (what: string, option: string, max: number) =>
    `Rate limited: the relay already keeps ${max} bytes for ${what}, all connections together (budgets.${option}); retry later.`,
  connectionBudgetShare: (what: string, option: string, max: number) =>
    `Rate limited: one connection may keep at most ${max} bytes at the relay for ${what}, its share (a quarter of budgets.${option}); wait for some of this connection's to complete.`,
  waitCapped: (pattern: string, maxMs: number) =>
    `No microservice for ${quote(pattern)} came online within ${maxMs} ms, the longest the relay lets a WAIT last (maxWaitTimeoutMs).`,
  streamOverflow: (pattern: string, buffered: number, max: number) =>
    `The stream of ${quote(pattern)} was stopped: its caller reads slower than the handler's Observable emits, and ${buffered} bytes waited for the caller's credit (over maxStreamBufferedBytes, ${max}). Return an async iterable to have the handler wait for its reader, or raise the limit.`,
  creditExceeded: (pattern: string) =>
    `The stream of ${quote(pattern)} was stopped: its provider sent more values than the caller had granted credit for.`,
  versionNotSpoken: (version: number, supported: readonly number[]) =>
    `The relay chose protocol version ${version}, which this node does not speak (it speaks ${supported.join(', ')}).`,
  tooManyPassiveSubscriptions: (given: number, max: number) =>
    `Forbidden: a passive client may subscribe to at most ${max} subjects; this HELLO has ${given}.`,
  relayUnsentOver: (buffered: number, max: number) => `slow consumer: ${buffered} bytes unsent, the relay's unsent bytes over ${max}`,
} as const;

/** What an ERROR frame carries; enough for the other side to rebuild the error. */
export interface RelayErrorWire {
  code: string;
  message: string;
  /** Code-specific details (HANDLER_FAILED: the failed deliveries). */
  details?: unknown;
}

/**
 * A failure made by the transport or the relay (not by a remote handler:
 * those reach the caller exactly as Nest's own transports deliver them).
 */
export class RelayError extends Error {
  override name = 'RelayError';
  readonly status: number;

  /** Code-specific details (HANDLER_FAILED: each failed delivery as `{ nodeId, code, error? }`). */
  readonly details: unknown;

  constructor(
    readonly code: RelayErrorCode,
    message: string,
    options?: { cause?: unknown; details?: unknown },
  ) {
    super(message, options);
    this.status = RELAY_ERROR_STATUS[code] ?? 500;
    this.details = options?.details;
  }

  toWire(): RelayErrorWire {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }

  /**
   * Rebuilds an error that came over the wire. A code this build does not
   * know (a newer relay) is kept as sent, with status 500.
   */
  static fromWire(wire: RelayErrorWire): RelayError {
    return new RelayError(wire.code as RelayErrorCode, wire.message, wire.details === undefined ? undefined : { details: wire.details });
  }

  /** JSON shape, so a RelayError logged or returned over HTTP keeps its code. */
  toJSON(): { name: string; code: string; status: number; message: string; details?: unknown } {
    const json = { name: this.name, code: this.code, status: this.status, message: this.message };
    return this.details === undefined ? json : { ...json, details: this.details };
  }
}

/** Where V8 (Node, Deno, Chromium) reads how many frames a new error's stack keeps; other engines ignore it. */
const V8Error = Error as ErrorConstructor & { stackTraceLimit?: number };

/**
 * Raised by the codec: the frame cannot be used. Always BAD_FRAME. It has no
 * stack trace: it describes bytes a peer sent, not a code path, and making
 * one without a stack costs a tenth as much (a relay makes one per refused frame).
 */
export class FrameError extends RelayError {
  readonly reason: string;
  /** The frame's request id when it could be read, so the error can be correlated. */
  readonly frameId: number;

  constructor(reason: string, frameId = 0) {
    const limit = V8Error.stackTraceLimit;
    V8Error.stackTraceLimit = 0;
    super(RelayErrorCode.BAD_FRAME, RelayErrorMessages.badFrame(reason));
    V8Error.stackTraceLimit = limit;
    this.reason = reason;
    this.frameId = frameId;
    this.name = 'FrameError';
  }
}

/**
 * A RelayError without a stack trace, for refusing what a peer sent (a
 * forbidden pattern, an oversized frame): the answer names the reason, and
 * no code path is worth the cost of capturing one per refused frame.
 */
export function refusalError(code: RelayErrorCode, message: string): RelayError {
  const limit = V8Error.stackTraceLimit;
  V8Error.stackTraceLimit = 0;
  try {
    return new RelayError(code, message);
  } finally {
    V8Error.stackTraceLimit = limit;
  }
}
