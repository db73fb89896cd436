/**
 * `npm run demo`: starts a relay, the greeter provider and the caller as three
 * processes, prints what they say, and exits with the caller's exit code.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

const LOADER = ['--import', '@swc-node/register/esm-register'];
const children: ChildProcess[] = [];

function start(name: string, entry: string, env: Record<string, string>, onLine?: (line: string) => void): ChildProcess {
  const child = spawn(process.execPath, [...LOADER, entry], {
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream! }).on('line', line => {
      if (!/InstanceLoader|NestFactory|WebSocketsController|RoutesResolver/.test(line)) {
        console.log(`[${name}] ${line.replace(/^\[Nest\] \d+\s+-\s+/, '')}`);
      }
      onLine?.(line);
    });
  }
  return child;
}

async function stopAll(): Promise<void> {
  await Promise.all(
    children
      .filter(c => c.exitCode === null && c.signalCode === null)
      .map(async c => {
        c.kill('SIGTERM');
        const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
        await once(c, 'exit');
        clearTimeout(timer);
      }),
  );
}

async function main(): Promise<number> {
  const url = await new Promise<string>((resolve, reject) => {
    const relay = start('relay', 'apps/relay/src/main.ts', { RELAY_PORT: '0', RELAY_HOST: '127.0.0.1' }, line => {
      const m = /Relay listening on (ws:\/\/\S+)/.exec(line);
      if (m) resolve(m[1]);
    });
    relay.once('exit', code => reject(new Error(`relay exited early (${code})`)));
    setTimeout(() => reject(new Error('relay did not start within 30 s')), 30_000).unref();
  });
  start('greeter', 'apps/greeter/src/main.ts', { RELAY_URL: url });
  const caller = start('caller', 'apps/caller/src/main.ts', { RELAY_URL: url });
  const [code] = (await once(caller, 'exit')) as [number | null];
  return code ?? 1;
}

main()
  .then(async code => {
    await stopAll();
    console.log(code === 0 ? 'demo: OK' : `demo: caller exited with ${code}`);
    process.exit(code);
  })
  .catch(async err => {
    console.error(`demo: ${(err as Error).message}`);
    await stopAll();
    process.exit(1);
  });
