import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { type Frame, RelayError, RelayErrorCode, RelayErrorMessages } from '@wsrelay/protocol';
import type WebSocket from 'ws';
import { RelayCore } from '../core/relay-core.js';
import { FramePolicy } from './frame-policy.js';

/**
 * The gateway's guard: a frame passes when the relay's FramePolicy lets it
 * (HELLO first, server-only frames from server connections, patterns within
 * the token's permissions); otherwise its RelayError answers the sender.
 * The adapter's hot path applies the same policy to the frames it routes
 * without Nest's pipeline.
 */
@Injectable()
export class FramePolicyGuard implements CanActivate {
  constructor(
    @Inject(FramePolicy) private readonly policy: FramePolicy,
    @Inject(RelayCore) private readonly core: RelayCore,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const ws = context.switchToWs();
    const session = this.core.sessionOf(ws.getClient<WebSocket>());
    if (session === undefined) throw new RelayError(RelayErrorCode.INTERNAL, RelayErrorMessages.internal());
    this.policy.check(session, ws.getData<Frame>());
    return true;
  }
}
