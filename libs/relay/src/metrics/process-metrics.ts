import { collectDefaultMetrics, type Metric, Registry } from 'prom-client';

let collected: Registry | undefined;

/**
 * Node's default process metrics (CPU, memory, heap, event loop lag, GC,
 * handles, file descriptors), in a registry of their own that is never
 * prom-client's global one. They are collected once per process: each
 * collection starts a GC observer and an event loop monitor that prom-client
 * gives no way to stop, so one per relay app would pile up in a process that
 * starts several. Every relay's registry holds these same metric objects.
 */
export function processMetrics(): ReadonlyMap<string, Metric> {
  if (collected === undefined) {
    collected = new Registry();
    collectDefaultMetrics({ register: collected });
  }
  const metrics = new Map<string, Metric>();
  for (const { name } of collected.getMetricsAsArray()) {
    const metric = collected.getSingleMetric(name);
    if (metric !== undefined) metrics.set(name, metric);
  }
  return metrics;
}
