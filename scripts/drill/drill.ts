import type { Database } from '../../src/db/database.js';
import type { BenchAgent, BenchIssuer } from '../lib/identities.js';
import type { ScratchPostgres } from '../lib/postgres.js';

/** What every drill gets: the drill's Postgres, a connection to it, identities and the broker config. */
export interface DrillContext {
  pg: ScratchPostgres;
  db: Database;
  issuer: BenchIssuer;
  agent: BenchAgent;
  configDir: string;
  kek: string;
  log(msg: string): void;
}

/** A drill's verdict: pass/fail per check, and the figures behind it. */
export interface DrillResult {
  name: string;
  pass: boolean;
  checks: Array<{ check: string; pass: boolean }>;
  figures: Record<string, unknown>;
}

export type Drill = (ctx: DrillContext) => Promise<DrillResult>;

/** Builds a result from named checks. */
export function verdict(name: string, checks: Record<string, boolean>, figures: Record<string, unknown>): DrillResult {
  const list = Object.entries(checks).map(([check, pass]) => ({ check, pass }));
  return { name, pass: list.every((c) => c.pass), checks: list, figures };
}
