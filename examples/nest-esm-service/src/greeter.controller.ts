import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import type { WsRelayContext } from '@wsrelay/transport';
import { interval, map, type Observable, take } from 'rxjs';

@Controller()
export class GreeterController {
  @MessagePattern('greet')
  greet(@Payload() name: string): string {
    return `Hello, ${name}!`;
  }

  /** A stream: one value every 100 ms, `from` down to 1. */
  @MessagePattern('countdown')
  countdown(@Payload() from: number): Observable<number> {
    return interval(100).pipe(
      take(from),
      map(i => from - i),
    );
  }

  @EventPattern<string>('greetings.*')
  greeted(@Payload() data: { to: string }, @Ctx() ctx: WsRelayContext): void {
    console.log(`Event ${ctx.getPattern()}: ${JSON.stringify(data)}`);
  }
}
