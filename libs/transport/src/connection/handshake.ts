import {
  FrameType,
  type HelloFrame,
  RelayError,
  RelayErrorCode,
  RelayErrorMessages,
  SUPPORTED_CAPABILITIES,
  SUPPORTED_PROTOCOL_VERSIONS,
  type WelcomeFrame,
} from '@wsrelay/protocol';
import type WebSocket from 'ws';
import type { NodeAnnouncement } from './connection-config.js';

/** What each relay session's WELCOME agreed on: the capabilities both sides speak. */
const agreed = new WeakMap<WebSocket, ReadonlySet<string>>();

/** A node's HELLO: every version and capability this build speaks, and what it announces. */
export function helloFrame(nodeId: string, announced: NodeAnnouncement): HelloFrame {
  const { service, patterns, events, queue } = announced;
  const versions = [...SUPPORTED_PROTOCOL_VERSIONS];
  return { type: FrameType.Hello, versions, nodeId, service, patterns, events, queue, caps: [...SUPPORTED_CAPABILITIES] };
}

/**
 * Takes what a session's WELCOME agreed on: its capabilities are recorded,
 * and a protocol version this node never offered is refused (PROTOCOL_MISMATCH:
 * nothing such a relay says can be read as meant).
 */
export function agreeOn(session: WebSocket, welcome: WelcomeFrame): RelayError | undefined {
  if (!SUPPORTED_PROTOCOL_VERSIONS.includes(welcome.version)) {
    const message = RelayErrorMessages.versionNotSpoken(welcome.version, SUPPORTED_PROTOCOL_VERSIONS);
    return new RelayError(RelayErrorCode.PROTOCOL_MISMATCH, message);
  }
  agreed.set(session, new Set(welcome.caps));
  return undefined;
}

/** Whether the relay session `session` agreed on capability `cap` (never for a session without WELCOME). */
export function speaks(session: WebSocket | undefined, cap: string): boolean {
  return session !== undefined && (agreed.get(session)?.has(cap) ?? false);
}
