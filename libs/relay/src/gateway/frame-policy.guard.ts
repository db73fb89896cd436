import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { type Frame, RelayError, RelayErrorCode, RelayErrorMessages } from '@wsrelay/protocol';
import type WebSocket from 'ws';
import { RelayCore } from '../core/relay-core.js';
import { FramePolicy } from './frame-policy.js';
import { Refusal } from './refused.js';

/**
 * The gateway's guard: a frame passes when the relay's FramePolicy lets it
 * (HELLO first, server-only frames from server connections, patterns within
 * the token's permissions); otherwise its RelayError answers the sender.
 * The adapter's hot path applies the same policy to the frames it routes
 * without Nest's pipeline. A frame the adapter already refused passes on to
 * the `refused` handler, which answers it.
 */
@Injectable()
export class FramePolicyGuard implements CanActivate {
  constructor(
    @Inject(FramePolicy) private readonly policy: FramePolicy,
    @Inject(RelayCore) private readonly core: RelayCore,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const ws = context.switchToWs();
    const data = ws.getData<Frame | Refusal>();
    // A frame the adapter refused is answered by the `refused` handler; there is nothing to judge.
    if (data instanceof Refusal) return true;
    const session = this.core.sessionOf(ws.getClient<WebSocket>());
    if (session === undefined) throw new RelayError(RelayErrorCode.INTERNAL, RelayErrorMessages.internal());
    this.policy.check(session, data);
    return true;
  }
}
