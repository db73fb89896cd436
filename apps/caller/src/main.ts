import 'reflect-metadata';
import { Inject, Injectable, Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientProxy, ClientsModule } from '@nestjs/microservices';
import { WsRelayClient, WsRelayRecordBuilder } from '@wsrelay/transport';
import { firstValueFrom, toArray } from 'rxjs';

const GREETER = 'GREETER';
const url = process.env.RELAY_URL ?? 'ws://127.0.0.1:8787/relay';

@Injectable()
class CallerService {
  private readonly logger = new Logger('Caller');

  constructor(@Inject(GREETER) private readonly greeter: ClientProxy) {}

  async run(): Promise<void> {
    await (this.greeter as WsRelayClient).waitFor('greet', 10_000);

    const reply = await firstValueFrom(this.greeter.send<string>('greet', 'Ada'));
    this.logger.log(`greet -> ${reply}`);

    const record = new WsRelayRecordBuilder(3).setTimeout(5_000).build();
    const counted = await firstValueFrom(this.greeter.send<number>({ cmd: 'countdown' }, record).pipe(toArray()));
    this.logger.log(`countdown -> ${counted.join(', ')}`);

    try {
      await firstValueFrom(this.greeter.send('greet', ''));
    } catch (err) {
      this.logger.log(`greet('') -> error ${JSON.stringify(err)}`);
    }

    const ack = await firstValueFrom(this.greeter.emit<unknown>('greetings.sent', { to: 'Ada' }));
    this.logger.log(`event greetings.sent -> ack ${JSON.stringify(ack)}`);
  }
}

@Module({
  imports: [ClientsModule.register([{ name: GREETER, customClass: WsRelayClient, options: { urls: [url] } }])],
  providers: [CallerService],
})
class CallerModule {}

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(CallerModule);
  try {
    await app.get(CallerService).run();
  } finally {
    await app.close();
  }
}

main().catch(err => {
  new Logger('Caller').error(err instanceof Error ? err.message : JSON.stringify(err));
  process.exit(1);
});
