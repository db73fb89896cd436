/** A grouped bar chart (plain SVG) of each peer's median relative to Nest TCP, per workload, with ours' targets. */
import type { PeerSummary } from './summary.js';
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

export function chart(summaries: Record<string, PeerSummary[]>, titles: Record<string, string>, caption: string): string {
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
  const W = 820;
  const H = 420;
  const left = 60;
  const right = 20;
  const plotTop = 50;
  const plotBottom = H - 110;
  const plotH = plotBottom - plotTop;
  const y = (v: number) => plotBottom - (v / top) * plotH;
  const groupW = (W - left - right) / Math.max(1, groups.length);
  const barW = Math.min(34, (groupW - 30) / BARS.length);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${left}" y="24" font-size="15" font-weight="bold">Throughput relative to Nest TCP (= 1.0), median of rounds</text>`,
  ];
  const step = top <= 3 ? 0.5 : top <= 8 ? 1 : 2;
  for (let v = 0; v <= top + 1e-9; v += step) {
    out.push(
      `<line x1="${left}" x2="${W - right}" y1="${y(v)}" y2="${y(v)}" stroke="${v === 0 ? '#333' : '#e5e7eb'}"/>`,
      `<text x="${left - 8}" y="${y(v) + 4}" text-anchor="end" fill="#555">${v.toFixed(1)}</text>`,
    );
  }
  out.push(
    `<line x1="${left}" x2="${W - right}" y1="${y(1)}" y2="${y(1)}" stroke="#111" stroke-width="1.5"/>`,
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
      out.push(
        `<line x1="${x0 - 4}" x2="${x0 + barW + 4}" y1="${t}" y2="${t}" stroke="#f59e0b" stroke-width="3" stroke-dasharray="5 2"/>`,
      );
    }
    out.push(
      `<text x="${left + g * groupW + groupW / 2}" y="${plotBottom + 18}" text-anchor="middle" font-weight="bold">${id}</text>`,
      `<text x="${left + g * groupW + groupW / 2}" y="${plotBottom + 33}" text-anchor="middle" fill="#555" font-size="11">${esc(titles[id] ?? '')}</text>`,
    );
  });
  let lx = left;
  const ly = plotBottom + 55;
  for (const b of BARS) {
    out.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${b.color}"/>`, `<text x="${lx + 17}" y="${ly}">${esc(b.label)}</text>`);
    lx += 34 + b.label.length * 6.5;
  }
  out.push(
    `<line x1="${lx}" x2="${lx + 22}" y1="${ly - 4}" y2="${ly - 4}" stroke="#f59e0b" stroke-width="3" stroke-dasharray="5 2"/>`,
    `<text x="${lx + 28}" y="${ly}">our target (issue 6)</text>`,
    ...caption.split('\n').map((line, i) => `<text x="${left}" y="${ly + 24 + i * 15}" fill="#555" font-size="11">${esc(line)}</text>`),
    '</svg>',
  );
  return `${out.join('\n')}\n`;
}
