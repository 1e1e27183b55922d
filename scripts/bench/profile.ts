import { readFile } from 'node:fs/promises';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  /** Busy (non-idle) milliseconds sampled. */
  busyMs: number;
  /** Self time by area, as a share of busy time. */
  byArea: Array<{ area: string; ms: number; share: number }>;
  /** The functions with the most self time. */
  topFunctions: Array<{ fn: string; ms: number; share: number }>;
  /** Share of busy time spent under (inclusive of) each named mint-path function. */
  inclusive: Record<string, number>;
}

/** Where a sampled frame's time is charged: a library, a broker area, or a runtime bucket. */
function areaOf(url: string, fn: string): string {
  if (fn === '(idle)' || fn === '(program)' || fn === '(garbage collector)') return fn;
  if (url.startsWith('wasm://')) return 'wasm (Cedar)';
  const lib = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (lib) {
    const name = lib[1]!;
    if (/^(express|router|body-parser|raw-body|iconv-lite|qs|finalhandler|send|type-is|content-type|on-finished|statuses|depd|http-errors|media-typer|mime-types|path-to-regexp)$/.test(name)) return 'express & body parsing';
    if (/^(pg|pg-protocol|pg-pool|pg-types|pgpass|postgres-.*|pg-connection-string)$/.test(name)) return 'pg driver';
    return name;
  }
  const src = /\/(src\/[^/]+)\//.exec(url);
  if (src) return src[1]!;
  if (fn === 'sign' || fn === 'verify' || /internal\/crypto\/sig/.test(url)) return 'node:crypto sign/verify';
  if (/internal\/crypto\/webcrypto|internal\/crypto\/ec|internal\/crypto\/keys/.test(url)) return 'node webcrypto (jose)';
  if (/internal\/crypto/.test(url)) return 'node:crypto other';
  if (/internal\/(http|_http|net|stream|streams|dns|tls)|^node:(_http|net|http)/.test(url) || /_http_/.test(url)) return 'node http/net/streams';
  if (url === '') return `(native) ${fn || 'anonymous'}`;
  return 'node other';
}

const MINT_PATH = ['authenticateWorkload', 'verifyIssuerToken', 'verifyClientAssertion', 'jwtVerify', 'requestGrant', 'signEs256', 'signEs256Async', 'sha256Hex', 'insertMint', 'consumeAssertionJti', 'parseOrThrow', 'jsonParser', 'requestContext'];

/**
 * Reads a V8 .cpuprofile and charges self time to areas and functions. Samples before `fromMicros`
 * (start-up, module loading, JIT warm-up) are left out: V8 and process.hrtime share the monotonic
 * clock on Linux, so the caller passes process.hrtime.bigint() / 1000n taken when the measured load began.
 */
export async function summarizeProfile(file: string, fromMicros = 0): Promise<ProfileSummary> {
  const p = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfMs = new Map<number, number>();
  let at = p.startTime;
  p.samples.forEach((id, i) => {
    at += p.timeDeltas[i] ?? 0;
    if (at >= fromMicros) selfMs.set(id, (selfMs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
  });

  const areas = new Map<string, number>();
  const fns = new Map<string, number>();
  const inclusive = new Map<string, number>();
  // The hook's own work (stopping the profiler, about 0.25 s of the last samples) is not the broker's.
  const ofHook = (id: number) => {
    for (let up: number | undefined = id; up !== undefined; up = parent.get(up)) if (byId.get(up)!.callFrame.url.endsWith('profile-hook.ts')) return true;
    return false;
  };
  let busy = 0;
  for (const [id, ms] of selfMs) {
    const n = byId.get(id)!;
    const { functionName: fn, url, lineNumber } = n.callFrame;
    if (fn === '(idle)' || ofHook(id)) continue;
    busy += ms;
    const area = areaOf(url, fn);
    areas.set(area, (areas.get(area) ?? 0) + ms);
    const where = url.replace(/^.*\/(node_modules|src)\//, '$1/').replace(/^file:\/\//, '');
    const key = `${fn || '(anonymous)'} ${where ? `${where}:${lineNumber + 1}` : ''}`.trim();
    fns.set(key, (fns.get(key) ?? 0) + ms);
    // Inclusive time: walk up the stack once per named function (recursion counted once).
    const seen = new Set<string>();
    for (let up: number | undefined = id; up !== undefined; up = parent.get(up)) {
      const name = byId.get(up)!.callFrame.functionName;
      if (MINT_PATH.includes(name) && !seen.has(name)) {
        seen.add(name);
        inclusive.set(name, (inclusive.get(name) ?? 0) + ms);
      }
    }
  }
  const share = (ms: number) => ms / busy;
  return {
    busyMs: busy,
    byArea: [...areas].sort((a, b) => b[1] - a[1]).map(([area, ms]) => ({ area, ms, share: share(ms) })),
    topFunctions: [...fns].sort((a, b) => b[1] - a[1]).slice(0, 20).map(([fn, ms]) => ({ fn, ms, share: share(ms) })),
    inclusive: Object.fromEntries(MINT_PATH.filter((f) => inclusive.has(f)).map((f) => [f, share(inclusive.get(f)!)])),
  };
}
