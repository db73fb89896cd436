/**
 * The Grafana dashboard in docs/ asks only for what a relay serves: every
 * metric its queries name is in a real relay's /metrics (so a renamed
 * metric cannot leave a panel silently empty).
 */
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { startRelay, useCleanup } from './support/harness.js';

interface Panel {
  title: string;
  targets: Array<{ expr: string }>;
}

const dashboard = JSON.parse(readFileSync(new URL('../docs/grafana-relay.json', import.meta.url), 'utf8')) as { panels: Panel[] };

/** The metric families a PromQL expression names (a histogram's _bucket series is its family). */
const familiesIn = (expr: string) =>
  [...expr.matchAll(/\b((?:wsrelay_relay|process|nodejs)_[a-z_]+)\b/g)].map(m => m[1].replace(/_bucket$/, ''));

describe('the Grafana dashboard for the relay', () => {
  const { track } = useCleanup();

  it('names only metrics a relay serves, and shows every relay metric', async () => {
    const relay = track(await startRelay());
    const text = await (await fetch(`http://127.0.0.1:${relay.port}/metrics`)).text();
    const served = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map(m => m[1]));
    const asked = new Set(dashboard.panels.flatMap(p => p.targets.flatMap(t => familiesIn(t.expr))));
    expect([...asked].filter(name => !served.has(name))).toEqual([]);
    const relayFamilies = [...served].filter(name => name.startsWith('wsrelay_relay_'));
    expect(relayFamilies.length).toBeGreaterThan(20);
    // Every relay metric is on the dashboard.
    expect(relayFamilies.filter(name => !asked.has(name))).toEqual([]);
  });
});
