/**
 * W7: what a second relay costs. Two relay processes (`wsrelay-relay`) joined over Redis
 * (on this run's own channel prefix) and one provider on relay B; W1's and
 * W2's load generator connects to relay B (same relay) or to relay A
 * (cross-relay: A → Redis → B and back), the placements taking turns to go
 * first, round by round. Both relays and Redis are measured in either
 * placement, so the same-relay figure is that of a relay in a cluster.
 */
import { type CellSettings, describeCell, disturbance, runCell } from './cells.js';
import { startCluster } from './peers.js';
import { type Cell, type CellError, type W7Placement, W7_PLACEMENTS, W7_WORKLOADS, type W7Result, type Workload } from './types.js';

export interface W7Settings {
  cell: CellSettings;
  rounds: number;
  /** See cells.ts `disturbance`. */
  maxOtherCores: number;
  /** Measurements of a disturbed cell, in all. */
  attempts: number;
}

/** Throws when the cluster cannot start (no Redis, no cluster formed); a failed measurement is recorded as a `CellError`. */
export async function runW7(s: W7Settings, log: (line: string) => void): Promise<W7Result> {
  const t0 = performance.now();
  const cluster = await startCluster(s.cell.prefix);
  log(
    `W7: relays ${cluster.relayIds.join(' and ')} clustered over ${cluster.redis} (channels ${cluster.channelPrefix}:*), provider on relay B, up in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  const raw: W7Result['raw'] = Object.fromEntries(W7_WORKLOADS.map(w => [w.id, { same: [], cross: [] }]));
  const repeated: W7Result['repeated'] = [];
  /** Disturbed cells, measured again after the rounds (as run.ts does for W1–W5). */
  const makeUp: Array<{ round: number; w: Workload; placement: W7Placement }> = [];

  const measure = async (round: number, w: Workload, placement: W7Placement): Promise<Cell | CellError> => {
    const tag = `round ${round + 1}/${s.rounds} W7 ${w.id} ${placement}`;
    try {
      const c = await runCell(cluster[placement], w, s.cell);
      const trouble = disturbance(c, s.maxOtherCores);
      if (trouble !== undefined) c.disturbed = trouble;
      log(`${tag}: ${describeCell(w, c)}${trouble ? ` DISTURBED: ${trouble}` : ''}`);
      return c;
    } catch (err) {
      log(`${tag}: FAILED ${(err as Error).message}`);
      return { error: (err as Error).message };
    }
  };

  try {
    for (let round = 0; round < s.rounds; round++) {
      const order = round % 2 === 0 ? W7_PLACEMENTS : [...W7_PLACEMENTS].reverse();
      for (const w of W7_WORKLOADS) {
        for (const placement of order) {
          const c = await measure(round, w, placement);
          raw[w.id][placement][round] = c;
          if ('disturbed' in c && c.disturbed !== undefined) makeUp.push({ round, w, placement });
        }
      }
    }
    if (makeUp.length > 0 && s.attempts > 1) log(`W7: measuring ${makeUp.length} disturbed cell(s) again`);
    for (const { round, w, placement } of makeUp) {
      const cells = raw[w.id][placement];
      for (let attempt = 2; attempt <= s.attempts; attempt++) {
        const old = cells[round] as Cell;
        await new Promise(r => setTimeout(r, 2000));
        const c = await measure(round, w, placement);
        if ('error' in c) continue;
        repeated.push({ round: round + 1, workload: w.id, placement, reason: old.disturbed!, cell: old });
        cells[round] = c;
        if (c.disturbed === undefined) break;
      }
    }
  } finally {
    await Promise.all(cluster.children.map(c => c.stop()));
  }
  return { cluster: { relays: cluster.relayIds, redis: cluster.redis, channelPrefix: cluster.channelPrefix }, raw, repeated };
}
