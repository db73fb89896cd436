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
  CLOSED = 'CLOSED',
  INTERNAL = 'INTERNAL',
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
  [RelayErrorCode.CLOSED]: 499,
  [RelayErrorCode.INTERNAL]: 500,
};

/** Message texts, kept in one place so every side words a failure the same way. */
export const RelayErrorMessages = {
  microserviceOffline: (pattern: string, target?: string | null) =>
    target != null
      ? `Node "${target}" is not online or does not serve pattern "${pattern}".`
      : `No microservice is online for pattern "${pattern}".`,
  providerDisconnected: (pattern: string) =>
    `The microservice handling "${pattern}" disconnected before it completed.`,
  timeout: (pattern: string, timeoutMs: number) =>
    `"${pattern}" did not complete within ${timeoutMs} ms.`,
  waitTimeout: (pattern: string, timeoutMs: number) =>
    `No microservice for "${pattern}" came online within ${timeoutMs} ms.`,
  relayUnavailable: (detail?: string) =>
    `No relay connection${detail ? `: ${detail}` : '.'}`,
  relayLost: () => 'The relay connection was lost while the request was in flight.',
  badFrame: (reason: string) => `Bad frame: ${reason}.`,
  payloadTooLarge: (size: number, max: number) =>
    `Frame of ${size} bytes is over the relay's limit of ${max} bytes.`,
  protocolMismatch: (offered: readonly number[], supported: readonly number[]) =>
    `Protocol version ${offered.join(', ') || 'none'} is not supported; the relay speaks ${supported.join(', ')}.`,
  nodeIdConflict: (nodeId: string) =>
    `Node id "${nodeId}" is already held by another live connection.`,
  closed: () => 'The client was closed.',
  internal: () => 'The relay failed to handle the frame.',
  helloFirst: () => 'HELLO must be the first frame of a connection.',
  helloTwice: () => 'HELLO was already received on this connection.',
  textFrame: () => 'text frames are not part of the protocol; send binary MessagePack',
  notInbound: (name: string) => `a ${name} frame is never sent to the relay`,
  duplicateId: (id: number) => `request id ${id} is already in flight on this connection`,
} as const;

/** What an ERROR frame carries; enough for the other side to rebuild the error. */
export interface RelayErrorWire {
  code: string;
  message: string;
}

/**
 * A failure made by the transport or the relay (not by a remote handler:
 * those reach the caller exactly as Nest's own transports deliver them).
 */
export class RelayError extends Error {
  override name = 'RelayError';
  readonly status: number;

  constructor(
    readonly code: RelayErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.status = RELAY_ERROR_STATUS[code] ?? 500;
  }

  toWire(): RelayErrorWire {
    return { code: this.code, message: this.message };
  }

  /**
   * Rebuilds an error that came over the wire. A code this build does not
   * know (a newer relay) is kept as sent, with status 500.
   */
  static fromWire(wire: RelayErrorWire): RelayError {
    return new RelayError(wire.code as RelayErrorCode, wire.message);
  }

  /** JSON shape, so a RelayError logged or returned over HTTP keeps its code. */
  toJSON(): { name: string; code: string; status: number; message: string } {
    return { name: this.name, code: this.code, status: this.status, message: this.message };
  }
}

/** Raised by the codec: the frame cannot be used. Always BAD_FRAME. */
export class FrameError extends RelayError {
  constructor(
    readonly reason: string,
    /** The frame's request id when it could be read, so the error can be correlated. */
    readonly frameId = 0,
  ) {
    super(RelayErrorCode.BAD_FRAME, RelayErrorMessages.badFrame(reason));
    this.name = 'FrameError';
  }
}
