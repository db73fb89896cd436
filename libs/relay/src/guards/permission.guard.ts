import { type CanActivate, type ExecutionContext, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  type EventFrame,
  type HelloFrame,
  RelayError,
  RelayErrorCode,
  RelayErrorMessages,
  type RequestFrame,
  type WaitFrame,
} from '@wsrelay/protocol';
import type WebSocket from 'ws';
import type { PermissionAction } from '../auth/permissions.js';
import { sessionOf } from '../session.js';

const PERMISSION = 'wsrelay:permission';

/** `'announce'`: HELLO's patterns need `serve`, its subscriptions `subscribe`. */
export type RequiredPermission = PermissionAction | 'announce';

/** The permission a gateway handler's frame needs, checked by PermissionGuard. */
export const RequirePermission = (permission: RequiredPermission) => SetMetadata(PERMISSION, permission);

const ACTION_WORDS: Record<PermissionAction, string> = {
  call: 'calling',
  serve: 'serving',
  publish: 'publishing',
  subscribe: 'subscribing to',
};

/**
 * Checks a frame's pattern against the connection's permissions, compiled
 * once per token; a denied frame gets FORBIDDEN and is not routed.
 */
@Injectable()
export class PermissionGuard implements CanActivate {
  /** Handler → required permission, read from metadata once per handler. */
  private readonly required = new WeakMap<object, RequiredPermission | null>();

  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    const handler = context.getHandler();
    let permission = this.required.get(handler);
    if (permission === undefined) {
      permission = this.reflector.get<RequiredPermission | undefined>(PERMISSION, handler) ?? null;
      this.required.set(handler, permission);
    }
    if (permission === null) return true;
    const ws = context.switchToWs();
    const session = sessionOf(ws.getClient<WebSocket>());
    if (session === undefined) return false;
    const perms = session.identity.permissions;
    if (permission === 'announce') {
      const hello = ws.getData<HelloFrame>();
      for (const p of hello.patterns) if (!perms.allows('serve', p)) deny('serve', p);
      for (const e of hello.events) if (!perms.allows('subscribe', e)) deny('subscribe', e);
      return true;
    }
    const frame = ws.getData<RequestFrame | EventFrame | WaitFrame>();
    if (!perms.allows(permission, frame.pattern)) deny(permission, frame.pattern);
    return true;
  }
}

function deny(action: PermissionAction, subject: string): never {
  throw new RelayError(RelayErrorCode.FORBIDDEN, RelayErrorMessages.forbidden(ACTION_WORDS[action], subject));
}
