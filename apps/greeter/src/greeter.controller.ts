import { Controller, Logger } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import type { WsRelayContext } from '@wsrelay/transport';
import { interval, map, take } from 'rxjs';

@Controller()
export class GreeterController {
  private readonly logger = new Logger(GreeterController.name);

  @MessagePattern('greet')
  greet(@Payload() name: string, @Ctx() ctx: WsRelayContext): string {
    if (!name) throw new RpcException({ code: 'NAME_REQUIRED', message: 'say who to greet' });
    return `Hello, ${name}! (from ${ctx.getPattern()}, called by ${ctx.getCallerId()})`;
  }

  @MessagePattern({ cmd: 'countdown' })
  countdown(@Payload() from: number) {
    return interval(50).pipe(
      take(from),
      map(i => from - i),
    );
  }

  @EventPattern<string>('greetings.*')
  onGreeting(@Payload() data: unknown, @Ctx() ctx: WsRelayContext): void {
    this.logger.log(`event ${ctx.getPattern()}: ${JSON.stringify(data)}`);
  }
}
