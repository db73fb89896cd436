import { Controller } from '@nestjs/common';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { startClient, startProvider, startRelay } from './support/harness.js';

@Controller()
class Greeter {
  @MessagePattern('greet')
  greet(@Payload() name: string) {
    return `hello ${name}`;
  }
  @EventPattern('greeted')
  greeted() {}
}

describe('smoke', () => {
  it('calls through the relay', async () => {
    const relay = await startRelay();
    const provider = await startProvider([Greeter], { urls: [relay.url] });
    const client = await startClient({ urls: [relay.url] });
    expect(await firstValueFrom(client.send('greet', 'world'))).toBe('hello world');
    expect(await firstValueFrom(client.emit('greeted', {}))).toEqual({ recipients: 1 });
    await client.close();
    await provider.close();
    await relay.close();
  });
});
