import { Module } from '@nestjs/common';
import { ClientsModule } from '@nestjs/microservices';
import { WsRelayClient } from '@wsrelay/transport';
import { AppController } from './app.controller';
import { GREETER } from './greeter.token';

@Module({
  imports: [
    ClientsModule.registerAsync([
      {
        name: GREETER,
        useFactory: () => ({
          customClass: WsRelayClient,
          options: {
            urls: [process.env.RELAY_URL ?? 'ws://127.0.0.1:8787/relay'],
            token: process.env.RELAY_TOKEN,
            timeoutMs: 5000,
          },
        }),
      },
    ]),
  ],
  controllers: [AppController],
})
export class AppModule {}
