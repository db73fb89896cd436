import { type FrameCodec, FrameType } from '@wsrelay/protocol';
import type WebSocket from 'ws';

/** The id of a node's DRAIN (a provider sends no ids of its own, so it cannot clash). */
export const DRAIN_ID = 0xffff_fffe;

/**
 * A node's DRAIN: it asks the relay to route it nothing new, and waits for the
 * relay's ACK (or an ERROR naming it, the session's close, or a timeout).
 */
export class NodeDrain {
  private pending: { socket: WebSocket; done: () => void } | undefined;

  /** Sends DRAIN on `socket`; resolves once the relay has answered it (or after `timeoutMs`). */
  request(socket: WebSocket, codec: FrameCodec, timeoutMs: number): Promise<void> {
    return new Promise<void>(resolve => {
      const done = () => {
        clearTimeout(timer);
        this.pending = undefined;
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      timer.unref();
      this.pending = { socket, done };
      socket.send(codec.encode({ type: FrameType.Drain, id: DRAIN_ID }));
    });
  }

  /** Whether an ACK or ERROR with `id` on `socket` answers the DRAIN (which it then settles). */
  settles(id: number, socket: WebSocket): boolean {
    const p = this.pending;
    if (p === undefined || id !== DRAIN_ID || socket !== p.socket) return false;
    p.done();
    return true;
  }

  /** A session closed: a DRAIN waiting on it is over. */
  closed(socket: WebSocket): void {
    if (this.pending?.socket === socket) this.pending.done();
  }
}
