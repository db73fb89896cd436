/**
 * `npm run demo`: starts a relay (the `wsrelay-relay` executable), the greeter
 * provider and the caller as three processes, all built (`npm run build`),
 * prints what they say, and exits with the caller's exit code.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { RELAY_BIN, startNode, stop } from './processes.js';

const children: ChildProcess[] = [];

function start(name: string, entry: string, env: Record<string, string>) {
  const started = startNode(entry, {
    env,
    onLine: line => {
      if (!/InstanceLoader|NestFactory|WebSocketsController|RoutesResolver/.test(line)) {
        console.log(`[${name}] ${line.replace(/^\[Nest\] \d+\s+-\s+/, '')}`);
      }
    },
  });
  children.push(started.child);
  return started;
}

async function main(): Promise<number> {
  const relay = start('relay', RELAY_BIN, { RELAY_PORT: '0', RELAY_HOST: '127.0.0.1' });
  const [, url] = await relay.line(/Relay listening on (ws:\/\/\S+)/);
  start('greeter', 'dist/apps/greeter/main.js', { RELAY_URL: url });
  const caller = start('caller', 'dist/apps/caller/main.js', { RELAY_URL: url });
  const [code] = (await once(caller.child, 'exit')) as [number | null];
  return code ?? 1;
}

main()
  .then(async code => {
    await Promise.all(children.map(c => stop(c)));
    console.log(code === 0 ? 'demo: OK' : `demo: caller exited with ${code}`);
    process.exit(code);
  })
  .catch(async err => {
    console.error(`demo: ${(err as Error).message}`);
    await Promise.all(children.map(c => stop(c)));
    process.exit(1);
  });
