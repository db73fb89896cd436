import { Body, Controller, Get, Inject, Param, ParseIntPipe, Post } from '@nestjs/common';
import { ClientProxy } from '@nestjs/microservices';
import { firstValueFrom, toArray } from 'rxjs';
import { GREETER } from './greeter.token';

@Controller()
export class AppController {
  constructor(@Inject(GREETER) private readonly greeter: ClientProxy) {}

  /** One call: the greeter's `greet` handler answers once. */
  @Get('greet/:name')
  async greet(@Param('name') name: string): Promise<{ greeting: string }> {
    const greeting = await firstValueFrom(this.greeter.send<string>('greet', name));
    return { greeting };
  }

  /** A stream: the greeter's `countdown` handler emits `from` values. */
  @Get('countdown/:from')
  async countdown(@Param('from', ParseIntPipe) from: number): Promise<{ values: number[] }> {
    const values = await firstValueFrom(this.greeter.send<number>('countdown', from).pipe(toArray()));
    return { values };
  }

  /** An event: every subscriber of `greetings.*` gets it; the relay acknowledges with how many. */
  @Post('greetings')
  async announce(@Body() body: { to: string }): Promise<{ recipients: number }> {
    return firstValueFrom(this.greeter.emit<{ recipients: number }>('greetings.sent', body));
  }
}
