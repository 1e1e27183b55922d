import { machineCpuSeconds } from '../lib/proc.js';

/**
 * Runs one raw-limit step and adds what an operation of it cost the whole machine: every process's
 * CPU over the step (and over `after`, work the step leaves behind, such as chaining the audit events
 * it staged), divided by the operations done. Those costs, added up, are what a mint built of nothing
 * but these parts would cost; see composedCeiling.
 */
export async function withMachineCost<T extends { rps: number; total?: number }>(run: () => Promise<T>, after?: () => Promise<unknown>): Promise<T & { machineMicrosPerOp: number }> {
  const before = machineCpuSeconds().busy;
  const started = performance.now();
  const r = await run();
  const ops = r.total ?? r.rps * ((performance.now() - started) / 1000);
  await after?.();
  return { ...r, machineMicrosPerOp: ((machineCpuSeconds().busy - before) * 1e6) / ops };
}

/** The rate the machine's cores would reach if each request cost exactly the sum of `parts` (machine CPU µs). */
export function composedCeiling(cores: number, parts: Record<string, number>): { microsPerOp: number; rps: number } {
  const microsPerOp = Object.values(parts).reduce((a, b) => a + b, 0);
  return { microsPerOp, rps: (cores * 1e6) / microsPerOp };
}
