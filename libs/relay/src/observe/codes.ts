import { RelayErrorCode } from '@wsrelay/protocol';
import { RefusalReason, RequestOutcome } from './relay-observer.js';

/** The refusal reason of an error code the relay answers a frame or an upgrade with. */
export function refusalReasonOf(code: string): RefusalReason {
  switch (code as RelayErrorCode) {
    case RelayErrorCode.UNAUTHORIZED:
      return RefusalReason.Auth;
    case RelayErrorCode.FORBIDDEN:
      return RefusalReason.Forbidden;
    case RelayErrorCode.RATE_LIMITED:
      return RefusalReason.Rate;
    case RelayErrorCode.PAYLOAD_TOO_LARGE:
      return RefusalReason.Size;
    case RelayErrorCode.BAD_FRAME:
      return RefusalReason.BadFrame;
    case RelayErrorCode.RELAY_UNAVAILABLE:
      return RefusalReason.Unavailable;
    case RelayErrorCode.PROTOCOL_MISMATCH:
    case RelayErrorCode.NODE_ID_CONFLICT:
      return RefusalReason.Handshake;
    default:
      return RefusalReason.Other;
  }
}

/** The outcome of a request that ended with the error code `code` (from this relay, or another relay of the cluster). */
export function outcomeOf(code: string): RequestOutcome {
  switch (code as RelayErrorCode) {
    case RelayErrorCode.TIMEOUT:
      return RequestOutcome.Timeout;
    case RelayErrorCode.PROVIDER_DISCONNECTED:
      return RequestOutcome.ProviderDisconnected;
    case RelayErrorCode.MICROSERVICE_OFFLINE:
      return RequestOutcome.MicroserviceOffline;
    case RelayErrorCode.RELAY_UNAVAILABLE:
      return RequestOutcome.RelayUnavailable;
    case RelayErrorCode.SLOW_CONSUMER:
      return RequestOutcome.SlowConsumer;
    case RelayErrorCode.RATE_LIMITED:
      return RequestOutcome.RateLimited;
    case RelayErrorCode.FORBIDDEN:
      return RequestOutcome.Forbidden;
    default:
      return RequestOutcome.Other;
  }
}
