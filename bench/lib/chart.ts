/**
 * A grouped bar chart (plain SVG) of each peer's median relative to Nest TCP,
 * per workload, with ours' targets; beside it, when W7 ran, ours' cross-relay
 * throughput relative to same-relay.
 */
import type { PeerSummary, W7Summary } from './summary.js';
import { PEER_LABELS, type PeerId } from './types.js';

const BARS: Array<{ peer: PeerId; color: string; label: string }> = [
  { peer: 'wsrelay', color: '#2563eb', label: 'wsrelay (ours)' },
  { peer: 'nest-nats', color: '#16a34a', label: 'Nest NATS' },
  { peer: 'nest-redis', color: '#dc2626', label: 'Nest Redis' },
  { peer: 'raw-ws', color: '#9333ea', label: 'raw ws relay (limit)' },
];

/** Ours' target per workload, as a multiple of Nest TCP. */
const TARGETS: Record<string, number> = { W1: 0.8, W2: 1.0, W3: 0.8, W4: 1.5 };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Width of the W7 panel, right of the main one. */
const W7_PANEL = 250;

export function chart(
  summaries: Record<string, PeerSummary[]>,
  titles: Record<string, string>,
  caption: string,
  w7: W7Summary[] = [],
): string {
  const groups = ['W1', 'W2', 'W3', 'W4'].filter(id => summaries[id] !== undefined);
  const ratios = groups.map(id => {
    const rows = summaries[id];
    const tcp = rows.find(r => r.peer === 'nest-tcp');
    return BARS.map(b => {
      const r = rows.find(x => x.peer === b.peer);
      return tcp?.missing === undefined && r?.missing === undefined && tcp && r ? r.value / tcp.value : undefined;
    });
  });
  const all = ratios.flat().filter((v): v is number => v !== undefined && Number.isFinite(v));
  const top = Math.max(2, Math.ceil(Math.max(...all, ...Object.values(TARGETS)) * 1.15 * 2) / 2);
  const w7Bars = w7.filter(r => r.crossOverSame !== undefined && Number.isFinite(r.crossOverSame.rps.median));
  const W = 820 + (w7Bars.length > 0 ? W7_PANEL : 0);
  const mainRight = 820;
  const H = 420;
  const left = 60;
  const right = 20;
  const plotTop = 50;
  const plotBottom = H - 110;
  const plotH = plotBottom - plotTop;
  const y = (v: number) => plotBottom - (v / top) * plotH;
  const groupW = (mainRight - left - right) / Math.max(1, groups.length);
  const barW = Math.min(34, (groupW - 30) / BARS.length);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${left}" y="24" font-size="15" font-weight="bold">Throughput relative to Nest TCP (= 1.0), median of rounds</text>`,
  ];
  const step = top <= 3 ? 0.5 : top <= 8 ? 1 : 2;
  for (let v = 0; v <= top + 1e-9; v += step) {
    out.push(
      `<line x1="${left}" x2="${mainRight - right}" y1="${y(v)}" y2="${y(v)}" stroke="${v === 0 ? '#333' : '#e5e7eb'}"/>`,
      `<text x="${left - 8}" y="${y(v) + 4}" text-anchor="end" fill="#555">${v.toFixed(1)}</text>`,
    );
  }
  out.push(
    `<line x1="${left}" x2="${mainRight - right}" y1="${y(1)}" y2="${y(1)}" stroke="#111" stroke-width="1.5"/>`,
    `<text x="${left + 4}" y="${y(1) - 5}" fill="#111">Nest TCP</text>`,
  );
  groups.forEach((id, g) => {
    const x0 = left + g * groupW + (groupW - barW * BARS.length) / 2;
    ratios[g].forEach((v, i) => {
      const x = x0 + i * barW;
      if (v === undefined || !Number.isFinite(v)) {
        out.push(`<text x="${x + barW / 2}" y="${plotBottom - 4}" text-anchor="middle" fill="#999" font-size="10">n/a</text>`);
        return;
      }
      out.push(
        `<rect x="${x + 2}" y="${y(v)}" width="${barW - 4}" height="${plotBottom - y(v)}" fill="${BARS[i].color}"><title>${esc(`${PEER_LABELS[BARS[i].peer]}: ${v.toFixed(2)}x`)}</title></rect>`,
        `<text x="${x + barW / 2}" y="${y(v) - 4}" text-anchor="middle" font-size="10">${v.toFixed(2)}</text>`,
      );
    });
    if (TARGETS[id] !== undefined) {
      const t = y(TARGETS[id]);
      out.push(`<line x1="${x0 - 4}" x2="${x0 + barW + 4}" y1="${t}" y2="${t}" stroke="#f59e0b" stroke-width="3" stroke-dasharray="5 2"/>`);
    }
    out.push(
      `<text x="${left + g * groupW + groupW / 2}" y="${plotBottom + 18}" text-anchor="middle" font-weight="bold">${id}</text>`,
      `<text x="${left + g * groupW + groupW / 2}" y="${plotBottom + 33}" text-anchor="middle" fill="#555" font-size="11">${esc(titles[id] ?? '')}</text>`,
    );
  });
  if (groups.length === 0) {
    out.push(
      `<text x="${(left + mainRight - right) / 2}" y="${plotBottom - plotH * 0.75}" text-anchor="middle" fill="#999">W1–W4 not measured in this run</text>`,
    );
  }
  if (w7Bars.length > 0) out.push(...w7Panel(w7Bars, mainRight, plotTop, plotBottom));
  let lx = left;
  const ly = plotBottom + 55;
  for (const b of BARS) {
    out.push(
      `<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${b.color}"/>`,
      `<text x="${lx + 17}" y="${ly}">${esc(b.label)}</text>`,
    );
    lx += 34 + b.label.length * 6.5;
  }
  out.push(
    `<line x1="${lx}" x2="${lx + 22}" y1="${ly - 4}" y2="${ly - 4}" stroke="#f59e0b" stroke-width="3" stroke-dasharray="5 2"/>`,
    `<text x="${lx + 28}" y="${ly}">target</text>`,
    ...caption.split('\n').map((line, i) => `<text x="${left}" y="${ly + 24 + i * 15}" fill="#555" font-size="11">${esc(line)}</text>`),
    '</svg>',
  );
  return `${out.join('\n')}\n`;
}

/** W7: ours' req/s with the client on relay A and the provider on relay B, ÷ both on relay B, per workload. */
function w7Panel(rows: W7Summary[], x0: number, plotTop: number, plotBottom: number): string[] {
  const ratios = rows.map(r => r.crossOverSame!.rps);
  const top = Math.max(1.2, Math.ceil(Math.max(...ratios.map(r => r.perRound?.max ?? r.median)) * 1.15 * 5) / 5);
  const y = (v: number) => plotBottom - (v / top) * (plotBottom - plotTop);
  const left = x0 + 40;
  const right = x0 + W7_PANEL - 20;
  const barW = Math.min(44, (right - left) / rows.length - 16);
  const out = [
    `<text x="${x0 + 14}" y="24" font-size="13" font-weight="bold">W7: cross-relay ÷ same relay</text>`,
    `<text x="${x0 + 14}" y="40" fill="#555" font-size="11">ours, req/s, two relays over Redis</text>`,
    `<line x1="${x0}" x2="${x0}" y1="${plotTop - 16}" y2="${plotBottom + 40}" stroke="#d1d5db"/>`,
  ];
  for (let v = 0; v <= top + 1e-9; v += 0.2) {
    out.push(
      `<line x1="${left}" x2="${right}" y1="${y(v)}" y2="${y(v)}" stroke="${v === 0 ? '#333' : '#e5e7eb'}"/>`,
      `<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end" fill="#555" font-size="10">${v.toFixed(1)}</text>`,
    );
  }
  out.push(
    `<line x1="${left}" x2="${right}" y1="${y(1)}" y2="${y(1)}" stroke="#111" stroke-width="1.5"/>`,
    `<text x="${right}" y="${y(1) - 5}" text-anchor="end" fill="#111">same relay</text>`,
  );
  const slot = (right - left) / rows.length;
  rows.forEach((row, i) => {
    const r = ratios[i];
    const cx = left + slot * i + slot / 2;
    out.push(
      `<rect x="${cx - barW / 2}" y="${y(r.median)}" width="${barW}" height="${plotBottom - y(r.median)}" fill="#60a5fa"><title>${esc(
        `${row.workload} req/s, client on relay A ÷ on relay B: ${r.median.toFixed(2)}x`,
      )}</title></rect>`,
      `<text x="${cx}" y="${y(Math.max(r.median, r.perRound?.max ?? 0)) - 4}" text-anchor="middle" font-size="10">${r.median.toFixed(2)}</text>`,
      `<text x="${cx}" y="${plotBottom + 18}" text-anchor="middle" font-weight="bold">${row.workload}</text>`,
      `<text x="${cx}" y="${plotBottom + 33}" text-anchor="middle" fill="#555" font-size="11">${esc(row.title.replace(/, 64 B$/, ''))}</text>`,
    );
    if (r.perRound !== undefined && r.perRound.max > r.perRound.min) {
      out.push(`<line x1="${cx}" x2="${cx}" y1="${y(r.perRound.max)}" y2="${y(r.perRound.min)}" stroke="#1e3a8a" stroke-width="1.5"/>`);
    }
  });
  return out;
}
