import { Controller, Logger } from '@nestjs/common';
import { Ctx, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import type { WsRelayContext } from '@wsrelay/transport';
import { setTimeout as delay } from 'node:timers/promises';
import { ExampleEvents } from './example-events.js';
import { ProviderActivity, type SlowCallReport } from './provider-activity.js';

/** Time between two values of `count`, so that the page shows them arriving one by one. */
export const COUNT_STEP_MS = 300;

/** The provider the page calls: an answer, a stream, and a long call that stops when the caller cancels. */
@Controller()
export class DemoController {
  private readonly logger = new Logger(DemoController.name);

  constructor(
    private readonly activity: ProviderActivity,
    private readonly events: ExampleEvents,
  ) {}

  @MessagePattern('greet')
  greet(@Payload() name: unknown, @Ctx() ctx: WsRelayContext): string {
    if (typeof name !== 'string' || name.trim() === '') {
      throw new RpcException({ code: 'NAME_REQUIRED', message: 'say who to greet' });
    }
    // The claims are the relay's verified ones: a page cannot claim another subject.
    return `Hello, ${name}! (token subject: ${String(ctx.getClaims()?.sub)})`;
  }

  /** 1, 2, ... up to `to` (at most 20): pulled one value at a time as the page reads them. */
  @MessagePattern('count')
  async *count(@Payload() to: unknown, @Ctx() ctx: WsRelayContext): AsyncGenerator<number> {
    const last = integerIn(to, 1, 20, 'count');
    for (let n = 1; n <= last; n++) {
      await delay(COUNT_STEP_MS, undefined, { signal: ctx.signal });
      yield n;
    }
  }

  /** Waits `seconds` (at most 60) unless the caller cancels: then `ctx.signal` aborts and the page is told. */
  @MessagePattern('slow')
  async slow(@Payload() job: unknown, @Ctx() ctx: WsRelayContext): Promise<string> {
    const { id, seconds } = slowJob(job);
    const started = Date.now();
    const report = (): SlowCallReport => ({ id, callerId: ctx.getCallerId(), afterMs: Date.now() - started });
    this.activity.emit('started', report());
    try {
      await delay(seconds * 1000, undefined, { signal: ctx.signal });
    } catch (err) {
      if (ctx.signal.aborted) await this.cancelled({ ...report(), reason: reasonOf(ctx.signal) });
      throw err;
    }
    return `${id} finished after ${seconds} s`;
  }

  private async cancelled(report: SlowCallReport): Promise<void> {
    this.activity.emit('cancelled', report);
    if (report.callerId === null) return;
    const notice = { kind: 'cancelled', id: report.id, afterMs: report.afterMs, reason: report.reason ?? 'aborted' } as const;
    await this.events.notice(report.callerId, notice).catch((err: unknown) => {
      this.logger.warn(`could not confirm the cancellation of ${report.id}: ${err instanceof Error ? err.message : String(err)}`);
    });
  }
}

function integerIn(value: unknown, min: number, max: number, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RpcException({ code: 'BAD_REQUEST', message: `${what}: an integer from ${min} to ${max}` });
  }
  return value;
}

function slowJob(job: unknown): { id: string; seconds: number } {
  const { id, seconds } = (job ?? {}) as { id?: unknown; seconds?: unknown };
  if (typeof id !== 'string' || id === '' || id.length > 64) {
    throw new RpcException({ code: 'BAD_REQUEST', message: 'slow: an id of 1 to 64 characters' });
  }
  return { id, seconds: integerIn(seconds, 1, 60, 'slow: seconds') };
}

/** The RelayError code the transport aborts a handler's signal with (CANCELLED, TIMEOUT, ...). */
function reasonOf(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  if (typeof reason === 'object' && reason !== null && 'code' in reason) return String(reason.code);
  return reason instanceof Error ? reason.name : 'aborted';
}
