import { Logger } from '@nestjs/common';
import { WsRelayClient, WsRelayRecordBuilder, type WsRelayReconnectOptions } from '@wsrelay/transport';
import { firstValueFrom } from 'rxjs';

/** The provider's nodes come back quickly after a relay restart. */
export const PROVIDER_RECONNECT: WsRelayReconnectOptions = { initialDelayMs: 100, maxDelayMs: 1000 };

const ITEMS = ['espresso', 'bagel', 'green tea', 'croissant', 'flat white'];

/** The payload of `orders.created`. */
export interface Order {
  id: number;
  item: string;
  quantity: number;
  at: string;
}

/** The payload of `chat.notice`: the provider telling one page what became of its call. */
export interface Notice {
  kind: 'cancelled';
  id: string;
  afterMs: number;
  reason: string;
}

/** The provider's outgoing events: `orders.created` every `everyMs`, and notices sent to a single page. */
export class ExampleEvents {
  private readonly logger = new Logger(ExampleEvents.name);
  private client?: WsRelayClient;
  private timer?: NodeJS.Timeout;
  private orders = 0;
  private publishing = false;

  constructor(
    private readonly everyMs: number,
    private readonly token: () => Promise<string>,
  ) {}

  async start(relayUrl: string): Promise<void> {
    this.client = new WsRelayClient({ urls: [relayUrl], token: this.token, reconnect: PROVIDER_RECONNECT });
    await this.client.connect();
    this.timer = setInterval(() => void this.publishOrder(), this.everyMs);
  }

  /** Sends `chat.notice` to one node only (the page that made the call), not to every subscriber. */
  async notice(nodeId: string, notice: Notice): Promise<void> {
    if (!this.client) return;
    await firstValueFrom(this.client.emit('chat.notice', new WsRelayRecordBuilder(notice).setNodeId(nodeId).build()));
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.client?.close();
  }

  private async publishOrder(): Promise<void> {
    // While the relay is away an emit waits for the reconnect: skip the ticks until it is through.
    if (this.publishing || !this.client) return;
    this.publishing = true;
    const id = ++this.orders;
    const order: Order = { id, item: ITEMS[id % ITEMS.length], quantity: 1 + (id % 3), at: new Date().toISOString() };
    try {
      await firstValueFrom(this.client.emit('orders.created', order));
    } catch (err) {
      this.logger.warn(`orders.created #${id} not sent: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.publishing = false;
    }
  }
}
