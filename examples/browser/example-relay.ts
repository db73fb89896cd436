import type { INestApplication, LoggerService, LogLevel } from '@nestjs/common';
import { createRelayApp } from '@wsrelay/relay';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ExampleRelayOptions {
  host: string;
  /** 0 for any free port; a restart reuses the port the first start got. */
  port: number;
  /** The HS256 secret the tokens are signed with. */
  secret: Uint8Array;
  /** The page's origins: the only ones a browser may connect from. */
  allowedOrigins: string[];
  logger?: LoggerService | LogLevel[] | false;
}

/** The example's relay, in its own Nest app so that it can stop and start again on the same port while the page stays up. */
export class ExampleRelay {
  private app?: INestApplication;
  private port: number;

  constructor(private readonly options: ExampleRelayOptions) {
    this.port = options.port;
  }

  get url(): string {
    return `ws://${this.options.host}:${this.port}/relay`;
  }

  async start(): Promise<void> {
    if (this.app) return;
    const { secret, allowedOrigins, logger } = this.options;
    // A demo: Ctrl-C or a restart does not wait half a minute for a `slow` call.
    const app = await createRelayApp({ auth: { secret }, allowedOrigins, drainTimeoutMs: 2_000 }, { logger });
    try {
      await app.listen(this.port, this.options.host);
    } catch (err) {
      await app.close();
      throw err;
    }
    this.port = ((app.getHttpServer() as Server).address() as AddressInfo).port;
    this.app = app;
  }

  /** Stops the relay (its nodes are told to move, then disconnected); `start()` brings it back on the same port. */
  async stop(): Promise<void> {
    const app = this.app;
    this.app = undefined;
    await app?.close();
  }
}
