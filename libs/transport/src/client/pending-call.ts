import type { Frame } from '@wsrelay/protocol';
import type WebSocket from 'ws';

/** A correlated frame waiting for its answer (RESPONSE, ACK, NODES or ERROR). */
export interface Pending {
  /** Each frame the relay answers the call with. */
  onFrame(frame: Frame & { id: number }): void;
  onError(err: Error): void;
  /** Past this (`Date.now()`), the client gives up even if the relay never answers. */
  giveUpAt: number;
  pattern: string;
  timeoutMs: number;
  /** The session it went out on: its CANCEL goes there, and it fails when that session ends. */
  via: WebSocket | undefined;
  /** Values of its stream handed to the subscriber since the last credit granted; -1: not flow-controlled. */
  taken: number;
}
