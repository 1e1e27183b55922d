import { fmt } from '../lib/stats.js';

/** One line of the results table. Latencies in ms; `ratio` is against the limit named in `vs`. */
export interface Row {
  scenario: string;
  clients?: number | string;
  rps?: number;
  p50?: number;
  p99?: number;
  max?: number;
  ratio?: number;
  vs?: string;
  /** A broker figure against each raw limit of the same run: node:crypto pair, INSERT, express hello-world. */
  limits?: { crypto: number; insert: number; hello: number };
  note?: string;
}

/** The results as a fixed-width terminal table. */
export function table(rows: Row[]): string {
  const head = ['scenario', 'clients', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'ratio', 'vs limit', 'crypto/insert/hello', 'note'];
  const cells = rows.map((r) => [
    r.scenario,
    r.clients === undefined ? '' : String(r.clients),
    fmt(r.rps),
    fmt(r.p50),
    fmt(r.p99),
    fmt(r.max),
    r.ratio === undefined ? '' : `${fmt(r.ratio, 2)}x`,
    r.vs ?? '',
    r.limits ? [r.limits.crypto, r.limits.insert, r.limits.hello].map((x) => fmt(x, 2)).join(' / ') : '',
    r.note ?? '',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => (i >= 2 && i <= 6 ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

export interface ChartPoint {
  clients: number;
  rps: number;
  p50: number;
  p99: number;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** A small dependency-free SVG: mint throughput (left) and p50/p99 latency (right) against concurrency. */
export function chartSvg(title: string, points: ChartPoint[], limits: { label: string; rps: number }[]): string {
  const W = 360;
  const H = 240;
  const pad = { l: 56, r: 16, t: 28, b: 40 };
  const panel = (x0: number, heading: string, series: Array<{ name: string; color: string; values: number[] }>, hlines: { label: string; value: number }[]) => {
    const maxY = Math.max(1, ...series.flatMap((s) => s.values), ...hlines.map((h) => h.value)) * 1.1;
    const px = (i: number) => x0 + pad.l + (i * (W - pad.l - pad.r)) / Math.max(1, points.length - 1);
    const py = (v: number) => pad.t + (H - pad.t - pad.b) * (1 - v / maxY);
    const out: string[] = [];
    out.push(`<text x="${x0 + W / 2}" y="16" text-anchor="middle" font-weight="bold">${esc(heading)}</text>`);
    out.push(`<line x1="${x0 + pad.l}" y1="${H - pad.b}" x2="${x0 + W - pad.r}" y2="${H - pad.b}" stroke="#333"/>`);
    out.push(`<line x1="${x0 + pad.l}" y1="${pad.t}" x2="${x0 + pad.l}" y2="${H - pad.b}" stroke="#333"/>`);
    for (let k = 0; k <= 4; k++) {
      const v = (maxY * k) / 4;
      out.push(`<text x="${x0 + pad.l - 6}" y="${py(v) + 4}" text-anchor="end">${fmt(v, 2)}</text>`);
      out.push(`<line x1="${x0 + pad.l}" y1="${py(v)}" x2="${x0 + W - pad.r}" y2="${py(v)}" stroke="#eee"/>`);
    }
    points.forEach((p, i) => out.push(`<text x="${px(i)}" y="${H - pad.b + 16}" text-anchor="middle">${p.clients}</text>`));
    out.push(`<text x="${x0 + W / 2}" y="${H - 6}" text-anchor="middle">concurrent clients</text>`);
    for (const h of hlines) {
      out.push(`<line x1="${x0 + pad.l}" y1="${py(h.value)}" x2="${x0 + W - pad.r}" y2="${py(h.value)}" stroke="#999" stroke-dasharray="4 3"/>`);
      out.push(`<text x="${x0 + W - pad.r}" y="${py(h.value) - 3}" text-anchor="end" fill="#666">${esc(h.label)}</text>`);
    }
    series.forEach((s, si) => {
      out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${s.values.map((v, i) => `${px(i)},${py(v)}`).join(' ')}"/>`);
      s.values.forEach((v, i) => out.push(`<circle cx="${px(i)}" cy="${py(v)}" r="3" fill="${s.color}"/>`));
      out.push(`<text x="${x0 + pad.l + 8}" y="${pad.t + 12 + si * 14}" fill="${s.color}">${esc(s.name)}</text>`);
    });
    return out.join('\n');
  };
  const body = [
    panel(0, 'mint throughput (req/s)', [{ name: 'mint', color: '#1f77b4', values: points.map((p) => p.rps) }], limits.map((l) => ({ label: l.label, value: l.rps }))),
    panel(W, 'mint latency (ms)', [
      { name: 'p50', color: '#2ca02c', values: points.map((p) => p.p50) },
      { name: 'p99', color: '#d62728', values: points.map((p) => p.p99) },
    ], [{ label: 'p99 target 25 ms', value: 25 }]),
  ];
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${H + 20}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<g transform="translate(0,14)">
${body.join('\n')}
</g>
<text x="6" y="12" fill="#444">${esc(title)}</text>
</svg>
`;
}
