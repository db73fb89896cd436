/**
 * `npm run bench:profile`: CPU profile of the relay (or, with
 * PROFILE=provider, of the provider) under W2 (64 in flight, 64 B) or, with
 * WORKLOAD=W4, under events (64 B, up to 1000 un-ACKed). Writes
 * bench/results/<target>-<workload>.cpuprofile and prints the functions with
 * the most self time.
 */
import { readdirSync, readFileSync, renameSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { RELAY_BIN, startNode, stop } from '../scripts/processes.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

async function main(): Promise<void> {
  const dir = 'bench/results/prof-tmp';
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const target = process.env.PROFILE === 'provider' ? 'provider' : 'relay';
  const workload = process.env.WORKLOAD === 'W4' ? 'W4' : 'W2';
  const load: Record<string, string> =
    workload === 'W4'
      ? { MODE: 'events', PATTERN: 'events', ACK: 'emit', WINDOW: '1000', SIZE: '64' }
      : { MODE: 'rpc', INFLIGHT: '64', SIZE: '64' };
  const prof = ['--cpu-prof', `--cpu-prof-dir=${dir}`];
  const relay = startNode(RELAY_BIN, { env: { RELAY_PORT: '0', RELAY_HOST: '127.0.0.1' }, nodeArgs: target === 'relay' ? prof : [] });
  const [, url] = await relay.line(/Relay listening on (ws:\/\/\S+)/);
  const provider = startNode('bench/peers/provider.ts', {
    env: { TRANSPORT: 'wsrelay', RELAY_URL: url },
    nodeArgs: target === 'provider' ? prof : [],
  });
  await provider.line(/READY/);
  const generator = startNode('bench/load.ts', { env: { TRANSPORT: 'wsrelay', RELAY_URL: url, ...load, DURATION_MS: '5000' } });
  const [, result] = await generator.line(/^RESULT (.*)$/, 60_000);
  console.log(`${workload} under profiling: ${result}`);
  await stop(generator.child);
  await stop(provider.child);
  await stop(relay.child);
  const file = readdirSync(dir).find(f => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('no profile written');
  const out = `bench/results/${target}-${workload.toLowerCase()}.cpuprofile`;
  renameSync(join(dir, file), out);
  rmSync(dir, { recursive: true, force: true });
  const profile = JSON.parse(readFileSync(out, 'utf8')) as { nodes: ProfileNode[] };
  const self = new Map<string, number>();
  let total = 0;
  for (const n of profile.nodes) {
    const hits = n.hitCount ?? 0;
    total += hits;
    const where = n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/work\/main\//, '');
    const key = `${n.callFrame.functionName || '(anonymous)'} ${where}:${n.callFrame.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + hits);
  }
  const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 30);
  for (const [k, v] of top) console.log(`${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
}

main().catch(err => {
  console.error(err);
  process.exit(1);
});
