/**
 * A conformance run against a live relay: each scenario of docs/protocol.md
 * is played with raw frames over connections of its own (provider and
 * caller both), within a time bound of its own, and reported as passed,
 * failed (with what was expected and what came) or skipped (an optional
 * capability the relay does not speak). See cli.ts for the command.
 */
import { randomBytes } from 'node:crypto';
import { type Scenario, ScenarioContext } from './context.js';
import { DISCOVERY_SCENARIOS } from './discovery.js';
import { ERROR_SCENARIOS } from './robustness.js';
import { EVENT_SCENARIOS } from './events.js';
import { Failure, Skipped } from './failure.js';
import { FLOW_SCENARIOS } from './flow-control.js';
import { HANDSHAKE_SCENARIOS } from './handshake.js';
import { RPC_SCENARIOS } from './rpc.js';

export type { Scenario } from './context.js';

/** Every scenario, in the order they run. */
export const SCENARIOS: readonly Scenario[] = [
  ...HANDSHAKE_SCENARIOS,
  ...RPC_SCENARIOS,
  ...EVENT_SCENARIOS,
  ...DISCOVERY_SCENARIOS,
  ...ERROR_SCENARIOS,
  ...FLOW_SCENARIOS,
];

export const DEFAULT_WAIT_MS = 5000;
export const DEFAULT_SCENARIO_TIMEOUT_MS = 30_000;

export interface ConformanceOptions {
  /** A JWT for a server connection, sent with every connection (`Authorization: Bearer`) when the relay needs one. */
  token?: string;
  /**
   * How long each frame the relay owes may take (a documented delay, such as a deadline, comes on top).
   * @default 5000
   */
  waitTimeoutMs?: number;
  /**
   * The most one scenario may take, whatever it waits for.
   * @default 30000
   */
  scenarioTimeoutMs?: number;
  /** Runs only the scenarios whose id or name contains one of these. @default every scenario */
  only?: readonly string[];
  /** Called with each result as soon as it is known. */
  onResult?: (result: ConformanceResult) => void;
}

export interface ConformanceResult {
  id: string;
  name: string;
  status: 'pass' | 'fail' | 'skip';
  /** Why it failed, or why it was skipped. */
  reason?: string;
  durationMs: number;
}

/** Runs the scenarios one after the other against the relay at `url`; resolves with a result for each. */
export async function runConformance(url: string, options: ConformanceOptions = {}): Promise<ConformanceResult[]> {
  const waitMs = options.waitTimeoutMs ?? DEFAULT_WAIT_MS;
  const boundMs = options.scenarioTimeoutMs ?? DEFAULT_SCENARIO_TIMEOUT_MS;
  if (!(waitMs > 0) || !(boundMs > 0)) throw new TypeError('waitTimeoutMs and scenarioTimeoutMs must be positive');
  const only = options.only ?? [];
  const chosen = only.length === 0 ? SCENARIOS : SCENARIOS.filter(s => only.some(o => s.id.includes(o) || s.name.includes(o)));
  // Node ids and patterns of this run only: runs against a shared relay do not meet.
  const run = randomBytes(4).toString('hex');
  const results: ConformanceResult[] = [];
  for (const scenario of chosen) {
    const ctx = new ScenarioContext(url, { token: options.token, waitMs }, `conformance-${run}-${scenario.id}`);
    const result = await runOne(scenario, ctx, boundMs);
    results.push(result);
    options.onResult?.(result);
  }
  return results;
}

async function runOne(scenario: Scenario, ctx: ScenarioContext, boundMs: number): Promise<ConformanceResult> {
  const { id, name } = scenario;
  const start = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Failure(`the scenario did not end within ${boundMs} ms`)), boundMs);
  });
  const ended = (status: ConformanceResult['status'], reason?: string): ConformanceResult => {
    const durationMs = Math.round(performance.now() - start);
    return reason === undefined ? { id, name, status, durationMs } : { id, name, status, reason, durationMs };
  };
  try {
    await Promise.race([scenario.run(ctx), bound]);
    return ended('pass');
  } catch (err) {
    if (err instanceof Skipped) return ended('skip', err.message);
    if (err instanceof Failure) return ended('fail', err.message);
    return ended('fail', `the script failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  } finally {
    clearTimeout(timer);
    // Whatever it still waits for ends with its connections.
    ctx.close();
  }
}

/** The report's lines: one per scenario, then the summary. */
export function formatResults(results: readonly ConformanceResult[]): string[] {
  return [...results.map(formatResult), summary(results)];
}

export function formatResult(r: ConformanceResult): string {
  const label = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP' }[r.status];
  return `${label}  ${r.name} (${r.durationMs} ms)${r.reason === undefined ? '' : `\n      ${r.reason}`}`;
}

export function summary(results: readonly ConformanceResult[]): string {
  const count = (s: ConformanceResult['status']) => results.filter(r => r.status === s).length;
  return `${results.length} scenarios: ${count('pass')} passed, ${count('fail')} failed, ${count('skip')} skipped`;
}

/** Whether the relay conforms: no scenario failed (a skipped one is an optional capability it does not speak). */
export function conforms(results: readonly ConformanceResult[]): boolean {
  return results.length > 0 && results.every(r => r.status !== 'fail');
}
