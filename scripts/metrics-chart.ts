/**
 * `npm run metrics:chart`: what the Grafana dashboard (docs/grafana-relay.json)
 * shows, drawn from a real relay's /metrics. It starts a relay, two providers
 * and a client in this process, runs a scripted workload for about twelve
 * seconds (steady calls and events, a burst of calls nobody serves, a
 * misbehaving connection sending bad frames, a second provider joining),
 * scrapes /metrics every half second, and writes docs/relay-metrics.svg:
 * four panels computed from the scrapes as the dashboard's queries compute
 * them (rates of counters, quantiles of the latency histogram).
 */
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPattern, MessagePattern } from '@nestjs/microservices';
import { createRelayApp } from '@wsrelay/relay';
import { WsRelayClient, WsRelayStrategy } from '@wsrelay/transport';
import { writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { firstValueFrom } from 'rxjs';
import WebSocket from 'ws';

const OUT = new URL('../docs/relay-metrics.svg', import.meta.url);
const SCRAPE_MS = 500;
const RUN_MS = 12_000;

@Controller()
class Greeter {
  @MessagePattern('greet')
  greet(name: string): string {
    return `Hello, ${name}!`;
  }

  @EventPattern('orders.created')
  created(_order: unknown): void {}
}

@Module({ controllers: [Greeter] })
class GreeterModule {}

type Sample = { at: number; values: Map<string, number> };

/** Each sample line of a Prometheus text scrape, by its series (name and labels as written). */
function parse(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}

async function provider(url: string, nodeId: string) {
  const strategy = new WsRelayStrategy({ urls: [url], nodeId });
  const app = await NestFactory.createMicroservice(GreeterModule, { strategy, logger: false });
  await app.listen();
  return app;
}

/** Runs while `until` is in the future: `fn` again and again, `concurrency` at a time. */
async function loop(until: number, concurrency: number, fn: () => Promise<unknown>): Promise<void> {
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < until) await fn().catch(() => undefined);
    }),
  );
}

async function main(): Promise<void> {
  const relay = await createRelayApp({ startupGraceMs: 0, drainTimeoutMs: 0 }, { logger: false });
  await relay.listen(0, '127.0.0.1');
  const port = ((relay.getHttpServer() as Server).address() as AddressInfo).port;
  const url = `ws://127.0.0.1:${port}/relay`;
  const providers = [await provider(url, 'greeter-1')];
  const client = new WsRelayClient({ urls: [url], timeoutMs: 200 });
  await client.connect();
  const samples: Sample[] = [];
  const start = Date.now();
  const scraper = setInterval(() => {
    void fetch(`http://127.0.0.1:${port}/metrics`)
      .then(r => r.text())
      .then(text => samples.push({ at: (Date.now() - start) / 1000, values: parse(text) }));
  }, SCRAPE_MS);
  const end = start + RUN_MS;
  const work = [
    loop(end, 16, () => firstValueFrom(client.send('greet', 'Ada'))),
    loop(end, 2, () => firstValueFrom(client.emit('orders.created', { id: 1 }))),
    // A burst of calls nobody serves, from 3 s to 5 s.
    sleep(3000).then(() => loop(start + 5000, 4, () => firstValueFrom(client.send('billing.refund', 1)))),
    // A connection sending bad frames, from 6 s to 8 s.
    sleep(6000).then(async () => {
      const bad = new WebSocket(url);
      await new Promise(resolve => bad.once('open', resolve));
      while (Date.now() < start + 8000) {
        bad.send(new Uint8Array([0x92, 0x63, 0x01]));
        await sleep(20);
      }
      bad.close();
    }),
    // A second provider at 9 s.
    sleep(9000).then(async () => providers.push(await provider(url, 'greeter-2'))),
  ];
  await Promise.all(work);
  await sleep(SCRAPE_MS * 2);
  clearInterval(scraper);
  await client.close();
  for (const p of providers) await p.close();
  await relay.close();
  writeFileSync(OUT, render(samples));
  console.log(`wrote ${OUT.pathname} from ${samples.length} scrapes`);
}

/** A series' per-second rate between consecutive samples (the sum of every series whose key starts with `prefix` and contains `filter`). */
function rate(samples: Sample[], prefix: string, filter = ''): Array<[number, number]> {
  const sum = (s: Sample) => [...s.values].filter(([k]) => k.startsWith(prefix) && k.includes(filter)).reduce((a, [, v]) => a + v, 0);
  return samples.slice(1).map((s, i) => [s.at, (sum(s) - sum(samples[i])) / (s.at - samples[i].at)]);
}

function gauge(samples: Sample[], key: string): Array<[number, number]> {
  return samples.map(s => [s.at, s.values.get(key) ?? 0]);
}

/** A quantile of the latency histogram over each scrape interval, in ms (as histogram_quantile computes it). */
function quantile(samples: Sample[], q: number): Array<[number, number]> {
  const buckets = (s: Sample) =>
    [...s.values]
      .filter(([k]) => k.startsWith('wsrelay_relay_request_duration_seconds_bucket'))
      .map(([k, v]) => [Number(/le="([^"]+)"/.exec(k)?.[1].replace('+Inf', 'Infinity')), v] as [number, number])
      .sort((a, b) => a[0] - b[0]);
  return samples.slice(1).map((s, i) => {
    const now = buckets(s);
    const before = buckets(samples[i]);
    const counts = now.map(([le, v], j) => [le, v - (before[j]?.[1] ?? 0)] as [number, number]);
    const total = counts.at(-1)?.[1] ?? 0;
    if (total === 0) return [s.at, 0];
    const rank = q * total;
    let prevLe = 0;
    let prevCount = 0;
    for (const [le, count] of counts) {
      if (count >= rank) {
        const upper = Number.isFinite(le) ? le : prevLe;
        return [s.at, 1000 * (prevLe + ((upper - prevLe) * (rank - prevCount)) / Math.max(1, count - prevCount))];
      }
      prevLe = le;
      prevCount = count;
    }
    return [s.at, 1000 * prevLe];
  });
}

type Line = { label: string; color: string; points: Array<[number, number]> };

function panel(x: number, y: number, w: number, h: number, title: string, unit: string, lines: Line[]): string {
  const left = 56;
  const bottom = 28;
  const top = 26;
  const maxX = RUN_MS / 1000 + 1;
  const maxY = Math.max(1, ...lines.flatMap(l => l.points.map(p => p[1]))) * 1.15;
  const px = (t: number) => x + left + (t / maxX) * (w - left - 10);
  const py = (v: number) => y + h - bottom - (v / maxY) * (h - bottom - top);
  const out = [
    `<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="#ffffff" stroke="#d4d4d8"/>`,
    `<text x="${x + 10}" y="${y + 18}" font-size="13" font-weight="bold">${title}</text>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const v = (maxY / 4) * i;
    out.push(`<line x1="${px(0)}" x2="${px(maxX)}" y1="${py(v)}" y2="${py(v)}" stroke="#f4f4f5"/>`);
    out.push(`<text x="${x + left - 6}" y="${py(v) + 4}" text-anchor="end" fill="#52525b">${format(v)}${unit}</text>`);
  }
  for (let t = 0; t <= maxX; t += 2) out.push(`<text x="${px(t)}" y="${y + h - 10}" text-anchor="middle" fill="#52525b">${t}s</text>`);
  lines.forEach((l, i) => {
    const d = l.points.map(([t, v]) => `${px(t).toFixed(1)},${py(v).toFixed(1)}`).join(' ');
    out.push(`<polyline fill="none" stroke="${l.color}" stroke-width="2" points="${d}"/>`);
    out.push(`<rect x="${x + w - 170}" y="${y + 28 + i * 16}" width="10" height="10" fill="${l.color}"/>`);
    out.push(`<text x="${x + w - 155}" y="${y + 37 + i * 16}">${l.label}</text>`);
  });
  return out.join('\n');
}

function format(v: number): string {
  return v >= 1000 ? `${(v / 1000).toFixed(1)}k` : v >= 10 ? v.toFixed(0) : v.toFixed(1);
}

function render(samples: Sample[]): string {
  const W = 1000;
  const H = 560;
  const pw = W / 2 - 15;
  const ph = H / 2 - 35;
  const m = 'wsrelay_relay_';
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="#fafafa"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">Relay metrics under a scripted load (scraped from /metrics every ${SCRAPE_MS} ms)</text>`,
    panel(10, 35, pw, ph, 'Requests per second, by outcome', '', [
      { label: 'ok', color: '#16a34a', points: rate(samples, `${m}requests_total{`, 'outcome="ok"') },
      { label: 'microservice_offline', color: '#dc2626', points: rate(samples, `${m}requests_total{`, 'outcome="microservice_offline"') },
    ]),
    panel(W / 2 + 5, 35, pw, ph, 'Request latency at the relay', ' ms', [
      { label: 'p50', color: '#2563eb', points: quantile(samples, 0.5) },
      { label: 'p99', color: '#9333ea', points: quantile(samples, 0.99) },
    ]),
    panel(10, 35 + ph + 20, pw, ph, 'Frames and events per second', '', [
      { label: 'request frames in', color: '#2563eb', points: rate(samples, `${m}frames_received_total{`, 'type="request"') },
      { label: 'events delivered', color: '#16a34a', points: rate(samples, `${m}events_delivered_total`) },
    ]),
    panel(W / 2 + 5, 35 + ph + 20, pw, ph, 'Refused frames per second, and server connections', '', [
      { label: 'bad frames refused', color: '#dc2626', points: rate(samples, `${m}refusals_total{`, 'reason="bad_frame"') },
      { label: 'server connections', color: '#2563eb', points: gauge(samples, `${m}connections{role="server"}`) },
    ]),
    '</svg>',
    '',
  ].join('\n');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
