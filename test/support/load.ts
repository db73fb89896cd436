import type { WsRelayClient } from '@wsrelay/transport';
import { firstValueFrom } from 'rxjs';
import { until } from './harness.js';

/** One call of a load: who made it, how it ended (who answered, or the error code) and when. */
export interface Outcome {
  client: string;
  /** The call's payload: a sequence number unique in the load. */
  seq: number;
  ok: boolean;
  /** Who answered (what the handler returned). */
  node?: string;
  code?: string;
  startedAt: number;
  settledAt: number;
}

/** Calls `pattern` (payload: a sequence number) over `clients` in closed loops, `perClient` at a time, until stopped; records every outcome. */
export function load(clients: Array<[string, WsRelayClient]>, pattern = 'work', perClient = 4) {
  const outcomes: Outcome[] = [];
  let running = true;
  let seq = 0;
  const loops = clients.flatMap(([name, c]) =>
    Array.from({ length: perClient }, async () => {
      while (running) {
        const n = ++seq;
        const startedAt = Date.now();
        try {
          const node = await firstValueFrom(c.send<string>(pattern, n));
          outcomes.push({ client: name, seq: n, ok: true, node, startedAt, settledAt: Date.now() });
        } catch (err) {
          outcomes.push({
            client: name,
            seq: n,
            ok: false,
            code: (err as { code?: string }).code ?? String(err),
            startedAt,
            settledAt: Date.now(),
          });
          // A client without a relay (or a relay without providers) fails at once: do not spin.
          await new Promise(r => setTimeout(r, 5));
        }
      }
    }),
  );
  const okCount = () => outcomes.reduce((n, o) => n + (o.ok ? 1 : 0), 0);
  return {
    outcomes,
    failed: () => outcomes.filter(o => !o.ok),
    /** Resolves once `n` more calls have succeeded. */
    succeeded: (n: number) => {
      const target = okCount() + n;
      return until(() => okCount() >= target, 15_000, `${n} more successful calls`);
    },
    /** Resolves once `identity` answered a call started after `since`. */
    servedBy: (identity: string, since: number, timeoutMs = 10_000) =>
      until(() => outcomes.some(o => o.ok && o.node === identity && o.startedAt >= since), timeoutMs, `a call served by ${identity}`),
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}
