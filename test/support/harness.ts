import 'reflect-metadata';
import type { INestApplication, INestMicroservice, Provider, Type } from '@nestjs/common';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { createRelayApp, type RelayModuleOptions } from '@wsrelay/relay';
import { WsRelayClient, type WsRelayClientOptions, WsRelayStrategy, type WsRelayStrategyOptions } from '@wsrelay/transport';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RunningRelay {
  app: INestApplication;
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Boots a real relay app on 127.0.0.1 (port 0 unless given; no drain on close unless `drainTimeoutMs` is given). */
export async function startRelay(options: RelayModuleOptions = {}, port = 0): Promise<RunningRelay> {
  // No drain at close unless a test asks for one: most tests close relays with calls they left hanging.
  // No startup grace unless a test asks for one: most tests expect MICROSERVICE_OFFLINE at once.
  const app = await createRelayApp({ drainTimeoutMs: 0, startupGraceMs: 0, ...options }, { logger: false });
  await app.listen(port, '127.0.0.1');
  const address = (app.getHttpServer() as Server).address() as AddressInfo;
  const path = options.path ?? '/relay';
  let closed: Promise<void> | undefined;
  return {
    app,
    port: address.port,
    url: `ws://127.0.0.1:${address.port}${path}`,
    // Once: a test may close a relay that its cleanup closes again.
    close: () => (closed ??= app.close()),
  };
}

export interface RunningProvider {
  app: INestMicroservice;
  strategy: WsRelayStrategy;
  close(): Promise<void>;
}

/** Boots a real Nest microservice with the given controllers on a WsRelayStrategy. */
export async function startProvider(
  controllers: Type<unknown>[],
  options: WsRelayStrategyOptions,
  providers: Provider[] = [],
): Promise<RunningProvider> {
  @Module({ controllers, providers })
  class ProviderModule {}
  const strategy = new WsRelayStrategy({ reconnect: { initialDelayMs: 20, maxDelayMs: 200 }, ...options });
  const app = await NestFactory.createMicroservice(ProviderModule, { strategy, logger: false });
  await app.listen();
  return { app, strategy, close: () => app.close() };
}

/** A connected WsRelayClient. */
export async function startClient(options: WsRelayClientOptions): Promise<WsRelayClient> {
  const client = new WsRelayClient({ reconnect: { initialDelayMs: 20, maxDelayMs: 200 }, ...options });
  await client.connect();
  return client;
}

/** Resolves when `predicate` becomes true, polling every 5 ms; rejects after `timeoutMs`. */
export async function until(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise(r => setTimeout(r, 5));
  }
}

/** Resolves when `check` resolves true, asking again 10 ms after each false; rejects after `timeoutMs`. */
export async function untilAsync(check: () => Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise(r => setTimeout(r, 10));
  }
}

/** 'settled' when `p` settles within `ms`, else 'pending' (for what must not happen yet; there is no event for an absence). */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<'settled' | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  const pending = new Promise<'pending'>(resolve => (timer = setTimeout(() => resolve('pending'), ms)));
  try {
    return await Promise.race([p.then(() => 'settled' as const), pending]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * What to undo after each test of the describe block it is called in: its
 * afterEach runs them, the last added first (hooks declared before or after
 * the call run before or after it).
 */
export function useCleanup() {
  const undo: Array<() => unknown> = [];
  afterEach(async () => {
    for (const fn of undo.splice(0).reverse()) await fn();
  });
  return {
    add: (...fns: Array<() => unknown>): void => void undo.push(...fns),
    /** Closes `x` after the test; returns it. */
    track: <T extends { close(): unknown }>(x: T): T => {
      undo.push(() => x.close());
      return x;
    },
  };
}

/** The error a promise rejects with; fails the test when it resolves. */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}
