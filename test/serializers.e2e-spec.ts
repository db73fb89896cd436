/**
 * Custom serializers and deserializers on both sides, as on Nest's own
 * transports. Pins two bugs: the provider's deserializer was skipped for
 * events, and a custom client serializer received the WsRelayRecord itself,
 * so the record's node id, headers, timeout and ack were lost (a call to a
 * named node went round-robin instead).
 *
 * Each side leaves a visible mark: the client's serializer wraps the data,
 * the provider's deserializer unwraps it and starts a trail, the handler adds
 * to the trail, the provider's serializer wraps the response and the
 * client's deserializer unwraps it, ending the trail.
 */
import { Controller, Inject } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload, type ReadPacket, type WritePacket } from '@nestjs/microservices';
import {
  RelayError,
  RelayErrorCode,
  type WsRelayClient,
  WsRelayContext,
  type WsRelayEventAck,
  WsRelayRecordBuilder,
} from '@wsrelay/transport';
import { finalize, firstValueFrom, interval, lastValueFrom, map, Observable, of, toArray } from 'rxjs';
import { type RunningProvider, type RunningRelay, rejection, startClient, startProvider, startRelay, until } from './support/harness.js';

const LABEL = 'LABEL';
const FULL_TRAIL = ['client.serialize', 'provider.deserialize', 'handler', 'provider.serialize', 'client.deserialize'];

/** What a handler gets once the provider's deserializer has run. */
interface Traced {
  value: unknown;
  trail: string[];
}
interface Envelope {
  by: string;
  body: unknown;
}

function envelopeOf(value: unknown, by: string): Envelope | undefined {
  const e = value as Envelope | null;
  return typeof e === 'object' && e !== null && e.by === by ? e : undefined;
}

const clientSerializer = {
  serialize: (p: ReadPacket): ReadPacket => ({ ...p, data: { by: 'client', body: p.data as unknown } }),
};
const providerDeserializer = {
  deserialize(p: ReadPacket): ReadPacket {
    const e = envelopeOf(p.data, 'client');
    const data: Traced = e ? { value: e.body, trail: ['client.serialize', 'provider.deserialize'] } : { value: p.data, trail: [] };
    return { ...p, data };
  },
};
const providerSerializer = {
  serialize: (p: WritePacket): WritePacket =>
    p.response === undefined ? p : { ...p, response: { by: 'provider', body: p.response as unknown } },
};
const clientDeserializer = {
  deserialize(p: WritePacket): WritePacket {
    const body = envelopeOf(p.response, 'provider')?.body as Traced | undefined;
    if (body === undefined) return p;
    return { ...p, response: { ...body, trail: [...body.trail, 'provider.serialize', 'client.deserialize'] } };
  },
};

const handled = (data: Traced, value: unknown = data.value): Traced => ({ value, trail: [...data.trail, 'handler'] });

interface SeenEvent {
  node: string;
  data: unknown;
  headers: Record<string, string>;
}
const seenEvents: SeenEvent[] = [];
/** Streams of the 'ticks' handler that ended (cancelled by their caller). */
let tickTeardowns = 0;

@Controller()
class TracedController {
  constructor(@Inject(LABEL) private readonly label: string) {}

  @MessagePattern('echo')
  echo(@Payload() data: Traced) {
    return handled(data);
  }

  @MessagePattern('count')
  count(@Payload() data: Traced) {
    return of(1, 2, 3).pipe(map(i => handled(data, (data.value as number) * i)));
  }

  @MessagePattern('whoami')
  whoami(@Payload() data: Traced) {
    return handled(data, this.label);
  }

  @MessagePattern('headers')
  headers(@Payload() data: Traced, @Ctx() ctx: WsRelayContext) {
    return handled(data, ctx.getHeaders());
  }

  @MessagePattern('ticks')
  ticks(@Payload() data: Traced) {
    return interval(5).pipe(
      map(i => handled(data, i)),
      finalize(() => tickTeardowns++),
    );
  }

  @MessagePattern('hang')
  hang() {
    return new Observable(() => undefined);
  }

  @EventPattern<string>('audit.*')
  audit(@Payload() data: unknown, @Ctx() ctx: WsRelayContext) {
    if (ctx.getPattern() === 'audit.fail') throw new Error('audit failed');
    seenEvents.push({ node: this.label, data, headers: ctx.getHeaders() });
  }
}

describe('custom serializers and deserializers through the relay', () => {
  let relay: RunningRelay;
  const providers: RunningProvider[] = [];
  let client: WsRelayClient;

  beforeAll(async () => {
    relay = await startRelay();
    for (const label of ['p1', 'p2']) {
      const options = { urls: [relay.url], nodeId: label, serializer: providerSerializer, deserializer: providerDeserializer };
      providers.push(await startProvider([TracedController], options, [{ provide: LABEL, useValue: label }]));
    }
    client = await startClient({ urls: [relay.url], serializer: clientSerializer, deserializer: clientDeserializer, timeoutMs: 5000 });
  });

  afterAll(async () => {
    await client.close();
    for (const p of providers) await p.close();
    await relay.close();
  });

  beforeEach(() => {
    seenEvents.length = 0;
  });

  it('runs all four on a request and its response', async () => {
    expect(await firstValueFrom(client.send('echo', { n: 7 }))).toEqual({ value: { n: 7 }, trail: FULL_TRAIL });
  });

  it('runs the provider serializer and client deserializer on every streamed item', async () => {
    const items = await lastValueFrom(client.send<Traced>('count', 5).pipe(toArray()));
    expect(items).toEqual([5, 10, 15].map(value => ({ value, trail: FULL_TRAIL })));
  });

  it("gives an event's handler the data the provider's deserializer made", async () => {
    const ack = await firstValueFrom(client.emit<WsRelayEventAck>('audit.plain', { n: 1 }));
    expect(ack).toEqual({ recipients: 2 });
    await until(() => seenEvents.length === 2, 5000, 'both providers to handle the event');
    expect(seenEvents.map(e => e.data)).toEqual(
      [1, 2].map(() => ({ value: { n: 1 }, trail: ['client.serialize', 'provider.deserialize'] })),
    );
  });

  it("keeps a record's ack and headers on an event under the custom serializer", async () => {
    const record = new WsRelayRecordBuilder({ n: 2 }).setAck('handlers').setHeaders({ tenant: 'acme' }).build();
    // ack 'handlers': emit() completes once both handlers have run, so they are seen at once.
    expect(await firstValueFrom(client.emit('audit.record', record))).toEqual({ recipients: 2 });
    expect(seenEvents.map(e => e.node).sort()).toEqual(['p1', 'p2']);
    for (const e of seenEvents) {
      expect(e).toMatchObject({
        data: { value: { n: 2 }, trail: ['client.serialize', 'provider.deserialize'] },
        headers: { tenant: 'acme' },
      });
    }
    const failing = new WsRelayRecordBuilder({ n: 3 }).setAck('handlers').build();
    const err = (await rejection(firstValueFrom(client.emit('audit.fail', failing)))) as RelayError;
    expect(err).toBeInstanceOf(RelayError);
    expect(err.code).toBe(RelayErrorCode.HANDLER_FAILED);
  });

  it('sends every call built with setNodeId to that node, where plain calls reach both', async () => {
    const named = new WsRelayRecordBuilder('who').setNodeId('p2').build();
    const targeted = await Promise.all(Array.from({ length: 20 }, () => firstValueFrom(client.send<Traced>('whoami', named))));
    expect(targeted).toEqual(Array.from({ length: 20 }, () => ({ value: 'p2', trail: FULL_TRAIL })));
    const plain = await Promise.all(Array.from({ length: 20 }, () => firstValueFrom(client.send<Traced>('whoami', 'who'))));
    expect(new Set(plain.map(r => r.value))).toEqual(new Set(['p1', 'p2']));
  });

  it("hands a record's headers to the handler's context", async () => {
    const record = new WsRelayRecordBuilder({}).setHeaders({ tenant: 'acme', trace: 't-1' }).build();
    expect(await firstValueFrom(client.send('headers', record))).toEqual({ value: { tenant: 'acme', trace: 't-1' }, trail: FULL_TRAIL });
  });

  it("honours a record's timeout instead of the client's", async () => {
    const record = new WsRelayRecordBuilder('x').setTimeout(150).build();
    const err = (await rejection(firstValueFrom(client.send('hang', record)))) as RelayError;
    expect(err).toBeInstanceOf(RelayError);
    expect(err.code).toBe(RelayErrorCode.TIMEOUT);
    expect(err.message).toContain('within 150 ms');
  });

  it("fails a call whose response the client's deserializer throws on, and stops the provider's stream", async () => {
    const picky = {
      deserialize(p: WritePacket): WritePacket {
        const tick = (envelopeOf(p.response, 'provider')?.body as Traced | undefined)?.value;
        if (tick === 2) throw new Error('cannot read tick 2');
        return clientDeserializer.deserialize(p);
      },
    };
    const other = await startClient({ urls: [relay.url], serializer: clientSerializer, deserializer: picky });
    try {
      const got: unknown[] = [];
      const err = await rejection(lastValueFrom(other.send<Traced>('ticks', 'go').pipe(map(r => got.push(r.value)))));
      expect(err).toEqual(new Error('cannot read tick 2'));
      expect(got).toEqual([0, 1]);
      await until(() => tickTeardowns === 1, 5000, "the provider's stream to be cancelled");
    } finally {
      await other.close();
    }
  });

  it('fails a send() or emit() whose data the client serializer throws on, as Nest does', async () => {
    const refusing = {
      serialize: (): never => {
        throw new Error('not serializable');
      },
    };
    const other = await startClient({ urls: [relay.url], serializer: refusing });
    try {
      expect(await rejection(firstValueFrom(other.send('echo', 1)))).toEqual(new Error('not serializable'));
      expect(await rejection(firstValueFrom(other.emit('audit.plain', 1)))).toEqual(new Error('not serializable'));
    } finally {
      await other.close();
    }
  });

  it('fails a call at once, with an error, when the provider serializer returns something other than a packet', async () => {
    const r = await startRelay();
    const whole = { serialize: (p: unknown) => JSON.stringify(p) };
    const p = await startProvider([TracedController], { urls: [r.url], serializer: whole }, [{ provide: LABEL, useValue: 'p' }]);
    const caller = await startClient({ urls: [r.url], timeoutMs: 60_000 });
    try {
      // Nest TCP sends such a serializer's output as the whole message; here it would leave the caller waiting out its deadline.
      expect(await rejection(firstValueFrom(caller.send('echo', { value: 1, trail: [] })))).toEqual({
        status: 'error',
        message: 'Internal server error',
      });
    } finally {
      await caller.close();
      await p.close();
      await r.close();
    }
  });
});
