/**
 * class-validator payload validation with Nest's ValidationPipe in a
 * provider: a valid payload is served (transformed to the DTO class), an
 * invalid one reaches a WsRelayClient caller exactly as Nest's TCP transport
 * delivers it for the same controller. Both transports run side by side: a
 * provider behind a real relay and a Nest TCP microservice, each called by
 * its own ClientProxy.
 */
import { BadRequestException, Controller, type INestMicroservice, Module, UsePipes, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientTCP, MessagePattern, Payload, RpcException, Transport } from '@nestjs/microservices';
import type { ClientProxy } from '@nestjs/microservices';
import type { WsRelayClient } from '@wsrelay/transport';
import { Type } from 'class-transformer';
import { IsInt, IsString, Length, Min, ValidateNested, type ValidationError } from 'class-validator';
import type { Server } from 'node:net';
import { firstValueFrom } from 'rxjs';
import { type RunningProvider, type RunningRelay, startClient, startProvider, startRelay } from './support/harness.js';

class AddressDto {
  @IsString() @Length(2, 2) country!: string;
}

class CreateUserDto {
  @IsString() @Length(1, 20) name!: string;
  @IsInt() @Min(0) age!: number;
  @ValidateNested() @Type(() => AddressDto) address!: AddressDto;
}

/** The constraint messages, flattened, as ValidationPipe's own factory lists them. */
const messages = (errors: ValidationError[], parent = ''): string[] =>
  errors.flatMap(e => [
    ...Object.values(e.constraints ?? {}).map(m => (parent === '' ? m : `${parent}.${m}`)),
    ...messages(e.children ?? [], parent === '' ? e.property : `${parent}.${e.property}`),
  ]);

@Controller()
class UsersController {
  /** Nest's default factory: a BadRequestException, which an RPC transport hides as an unknown error. */
  @MessagePattern('users.create')
  @UsePipes(new ValidationPipe({ transform: true }))
  create(@Payload() dto: CreateUserDto) {
    return { isDto: dto instanceof CreateUserDto, isAddressDto: dto.address instanceof AddressDto, dto };
  }

  /** The Nest microservices recipe: the BadRequest body carried in an RpcException. */
  @MessagePattern('users.create.rpc')
  createRpc(
    @Payload(
      new ValidationPipe({
        transform: true,
        exceptionFactory: errors => new RpcException(new BadRequestException(messages(errors)).getResponse()),
      }),
    )
    dto: CreateUserDto,
  ) {
    return { isDto: dto instanceof CreateUserDto, name: dto.name };
  }

  /** The raw ValidationError objects (target, value, property, constraints, children) as the error. */
  @MessagePattern('users.create.raw')
  @UsePipes(new ValidationPipe({ transform: true, exceptionFactory: errors => new RpcException(errors) }))
  createRaw(@Payload() dto: CreateUserDto) {
    return dto.name;
  }
}

@Module({ controllers: [UsersController] })
class TcpModule {}

const valid = { name: 'Ada', age: 36, address: { country: 'GB' } };
const invalid = { name: '', age: -1.5, address: { country: 'GBR' }, extra: true };

describe('ValidationPipe in a provider, through the relay and over Nest TCP', () => {
  let relay: RunningRelay;
  let provider: RunningProvider;
  let viaRelay: WsRelayClient;
  let tcpApp: INestMicroservice;
  let viaTcp: ClientTCP;

  beforeAll(async () => {
    relay = await startRelay();
    provider = await startProvider([UsersController], { urls: [relay.url] });
    viaRelay = await startClient({ urls: [relay.url] });
    tcpApp = await NestFactory.createMicroservice(TcpModule, {
      transport: Transport.TCP,
      options: { host: '127.0.0.1', port: 0 },
      logger: false,
    });
    await tcpApp.listen();
    const { port } = tcpApp.unwrap<Server>().address() as { port: number };
    viaTcp = new ClientTCP({ host: '127.0.0.1', port });
    await viaTcp.connect();
  });

  afterAll(async () => {
    viaTcp.close();
    await tcpApp.close();
    await viaRelay.close();
    await provider.close();
    await relay.close();
  });

  /** The same call through both transports: what each caller got, value or error. */
  async function both(pattern: string, data: unknown): Promise<{ relay: unknown; tcp: unknown }> {
    const outcome = (client: Pick<ClientProxy, 'send'>) =>
      firstValueFrom(client.send<unknown>(pattern, data)).then(
        value => ({ value }),
        (error: unknown) => ({ error }),
      );
    const [r, t] = await Promise.all([outcome(viaRelay), outcome(viaTcp)]);
    return { relay: r, tcp: t };
  }

  it('serves a valid payload, transformed to the DTO class (nested too), as TCP does', async () => {
    const got = await both('users.create', valid);
    expect(got.relay).toEqual({ value: { isDto: true, isAddressDto: true, dto: valid } });
    expect(got.relay).toStrictEqual(got.tcp);
    expect(await firstValueFrom(viaRelay.send('users.create.rpc', valid))).toEqual({ isDto: true, name: 'Ada' });
  });

  it("hides the default BadRequestException as Nest does: { status: 'error', message: 'Internal server error' }", async () => {
    const got = await both('users.create', invalid);
    expect(got.relay).toEqual({ error: { status: 'error', message: 'Internal server error' } });
    expect(got.relay).toStrictEqual(got.tcp);
  });

  it("delivers an RpcException's BadRequest body (statusCode, message list, error) as TCP does", async () => {
    const got = await both('users.create.rpc', invalid);
    expect(got.relay).toEqual({
      error: {
        statusCode: 400,
        error: 'Bad Request',
        message: expect.arrayContaining([
          'name must be longer than or equal to 1 characters',
          'age must be an integer number',
          'age must not be less than 0',
          'address.country must be shorter than or equal to 2 characters',
        ]) as unknown,
      },
    });
    expect(got.relay).toStrictEqual(got.tcp);
  });

  it('delivers raw ValidationError objects (target, value, nested children) as TCP does', async () => {
    const got = (await both('users.create.raw', invalid)) as { relay: { error: ValidationError[] }; tcp: { error: ValidationError[] } };
    expect(got.relay.error.map(e => e.property)).toEqual(['name', 'age', 'address']);
    expect(got.relay.error[1]).toMatchObject({ property: 'age', value: -1.5, constraints: { isInt: 'age must be an integer number' } });
    expect(got.relay.error[2].children?.[0]).toMatchObject({ property: 'country', value: 'GBR' });
    expect(got.relay).toStrictEqual(got.tcp);
    // Missing properties: `value` is undefined, which JSON leaves out; MessagePack must not turn it into null.
    const missing = (await both('users.create.raw', { address: {} })) as { relay: { error: ValidationError[] }; tcp: unknown };
    expect(missing.relay.error[0]).not.toHaveProperty('value');
    expect(missing.relay).toStrictEqual(missing.tcp);
  });
});
