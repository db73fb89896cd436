/**
 * Pins: Nest 12 lets a processing-start hook return nothing (it calls `done`
 * and returns). The provider took what the hook returned for the handler's
 * end, so a handler-acked event was reported handled as soon as the hook
 * returned, while its handler still ran.
 */
import { describe, expect, it } from '@jest/globals';
import { Controller } from '@nestjs/common';
import { EventPattern, MessagePattern, RpcException } from '@nestjs/microservices';
import { type RelayError, RelayErrorCode } from '@wsrelay/protocol';
import { type WsRelayEventAck, WsRelayRecordBuilder } from '@wsrelay/transport';
import { firstValueFrom } from 'rxjs';
import { rejection, type RunningRelay, startClient, startProvider, startRelay, useCleanup } from './support/harness.js';

/** The slow handler's start, and the gate that lets it finish. */
const slow = {
  started: undefined as (() => void) | undefined,
  gate: undefined as Promise<void> | undefined,
  order: [] as string[],
};

@Controller()
class SlowController {
  @EventPattern<string>('jobs.slow')
  async work(): Promise<void> {
    slow.started?.();
    await slow.gate;
    slow.order.push('handler done');
  }

  @EventPattern('jobs.fail')
  fail(_data: unknown): void {
    throw new RpcException({ code: 'JOB_REJECTED' });
  }

  @MessagePattern('ping')
  ping(): string {
    return 'pong';
  }
}

describe('processing hooks', () => {
  const { add } = useCleanup();

  it('a start hook that returns nothing: the event is handled when its handler is, not when the hook returns', async () => {
    const relay: RunningRelay = await startRelay();
    add(() => relay.close());
    const provider = await startProvider([SlowController], { urls: [relay.url] });
    add(() => provider.close());
    // As Nest 12 allows: runs the handler, returns nothing.
    provider.strategy.setOnProcessingStartHook((_transport, _context, done) => {
      void done();
    });
    const client = await startClient({ urls: [relay.url] });
    add(() => client.close());

    let open!: () => void;
    slow.gate = new Promise<void>(resolve => (open = resolve));
    const started = new Promise<void>(resolve => (slow.started = resolve));
    slow.order = [];
    const record = new WsRelayRecordBuilder({}).setAck('handlers').build();
    const acked = firstValueFrom(client.emit<WsRelayEventAck>('jobs.slow', record)).then(ack => {
      slow.order.push('acked');
      return ack;
    });
    await started;
    // The provider answers frames in order: a HANDLED sent when the hook returned would reach this
    // client (as its ACK) before the answer to a call made after the handler started.
    expect(await firstValueFrom(client.send<string>('ping', 1))).toBe('pong');
    expect(slow.order).toEqual([]);
    open();
    expect(await acked).toEqual({ recipients: 1 });
    expect(slow.order).toEqual(['handler done', 'acked']);
  });

  it("a handler's failure ends the processing once and fails the event, and is not thrown back into the hook", async () => {
    const relay: RunningRelay = await startRelay();
    add(() => relay.close());
    const provider = await startProvider([SlowController], { urls: [relay.url] });
    add(() => provider.close());
    // A hook that does not await `done` (a rejection thrown back into it would go unhandled).
    const returned: Array<Promise<unknown>> = [];
    let ended = 0;
    provider.strategy.setOnProcessingStartHook((_transport, _context, done) => {
      returned.push(done());
    });
    provider.strategy.setOnProcessingEndHook(() => ended++);
    const client = await startClient({ urls: [relay.url] });
    add(() => client.close());

    const record = new WsRelayRecordBuilder({}).setAck('handlers').build();
    const err = (await rejection(firstValueFrom(client.emit('jobs.fail', record)))) as RelayError;
    expect(err.code).toBe(RelayErrorCode.HANDLER_FAILED);
    expect(err.details).toEqual([expect.objectContaining({ code: 'HANDLER_ERROR', error: { code: 'JOB_REJECTED' } })]);
    expect(await firstValueFrom(client.send<string>('ping', 1))).toBe('pong');
    expect(returned).toHaveLength(2);
    expect(await Promise.allSettled(returned)).toEqual([
      { status: 'fulfilled', value: undefined },
      { status: 'fulfilled', value: undefined },
    ]);
    expect(ended).toBe(2);
  });
});
