import {
  Capability,
  CloseCode,
  type HelloFrame,
  FrameType,
  type RelayError,
  RelayErrorCode,
  SUPPORTED_PROTOCOL_VERSIONS,
  type WelcomeFrame,
} from '@wsrelay/protocol';
import { clientErrors } from './errors.js';
import type { ClientConfig } from './options.js';

/** HELLO of a client: every version and capability it speaks, no patterns, its subscriptions. */
export function helloFrame(config: ClientConfig): HelloFrame {
  return {
    type: FrameType.Hello,
    versions: [...SUPPORTED_PROTOCOL_VERSIONS],
    nodeId: config.nodeId,
    service: null,
    patterns: [],
    events: config.subscriptions,
    queue: null,
    caps: [Capability.CREDIT],
  };
}

/** PROTOCOL_MISMATCH when the relay chose a version the client never offered; undefined when it may be used. */
export function versionRefused(welcome: WelcomeFrame): RelayError | undefined {
  return SUPPORTED_PROTOCOL_VERSIONS.includes(welcome.version)
    ? undefined
    : clientErrors.versionNotSpoken(welcome.version, SUPPORTED_PROTOCOL_VERSIONS);
}

/** The session may flow-control streams: WELCOME listed `credit`. */
export function agreesOnCredit(welcome: WelcomeFrame): boolean {
  return welcome.caps?.includes(Capability.CREDIT) ?? false;
}

/** Handshake refusals that retrying cannot fix: the client must change first. */
const FOR_GOOD = new Set<string>([RelayErrorCode.PROTOCOL_MISMATCH, RelayErrorCode.FORBIDDEN, RelayErrorCode.BAD_FRAME]);

/** Whether the relay's refusal of HELLO stands whatever the client retries. */
export function refusedForGood(err: RelayError): boolean {
  return FOR_GOOD.has(err.code);
}

/** A close code that says retrying cannot help (the relay refused HELLO without an ERROR the client read). */
export function fatalClose(code: number, reason: string): RelayError | undefined {
  if (code === CloseCode.PROTOCOL_MISMATCH) return clientErrors.refused(RelayErrorCode.PROTOCOL_MISMATCH, reason || 'protocol mismatch');
  if (code === CloseCode.FORBIDDEN) return clientErrors.refused(RelayErrorCode.FORBIDDEN, reason || 'HELLO refused');
  return undefined;
}
