import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';

/**
 * What the suite-wide scan looks for in every test database and every broker log line. A compact
 * JWT/JWS: three base64url segments, the first a JOSE header (`eyJ` is `{"`); confirmed by decoding it,
 * so random base64 that happens to contain `eyJ` (a sealed key, a hash) is not reported.
 */
const JWT = /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;
const PEM = /-----BEGIN ([A-Z0-9 ]+)-----/g;
/** Secrets the broker makes carry a prefix and 32 random bytes: admin keys and webhook signing secrets. */
const BROKER_SECRET = /(?<![A-Za-z0-9_-])(?:tsk|whsec)_[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/;
/** The same three, loosely, in Postgres' regex dialect: finds candidate rows, which JS then checks. */
const CANDIDATE_SQL = String.raw`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.|-----BEGIN [A-Z0-9 ]+-----|(tsk|whsec)_[A-Za-z0-9_-]{43}`;
/** Public material is not a secret: public keys and certificates in PEM. */
const PUBLIC_PEM = /^(?:PUBLIC KEY|RSA PUBLIC KEY|CERTIFICATE)$/;
/** Columns that hold a signed token by design, and why it is no secret. */
const PUBLIC_COLUMNS: Record<string, string> = {
  'status_lists.token': 'the signed Token Status List, served to anyone at /statuslists/{id}',
};

export type SecretRule = 'jwt' | 'pem' | 'broker_secret';
export interface Finding {
  where: string;
  rule: SecretRule;
}

function joseHeader(segment: string): boolean {
  try {
    const header = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')) as unknown;
    return typeof header === 'object' && header !== null && 'alg' in header;
  } catch {
    return false;
  }
}

/** The secret shapes found in `text` (each rule once). */
export function secretShapes(text: string): SecretRule[] {
  const found: SecretRule[] = [];
  if ([...text.matchAll(JWT)].some((m) => joseHeader(m[0].split('.')[0]!))) found.push('jwt');
  if ([...text.matchAll(PEM)].some((m) => !PUBLIC_PEM.test(m[1]!))) found.push('pem');
  if (BROKER_SECRET.test(text)) found.push('broker_secret');
  return found;
}

/**
 * Every column of every row of every table in `db` (as JSON text, so jsonb and arrays too), reported
 * as `<label> <table>.<column> row <id>`. Candidate rows are found by Postgres, checked here.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any test database, whatever its schema
export async function scanDatabase(db: Kysely<any>, label: string): Promise<Finding[]> {
  const findings: Finding[] = [];
  const tables = await sql<{ name: string }>`select tablename as name from pg_tables where schemaname = 'public' order by 1`.execute(db);
  for (const { name } of tables.rows) {
    const { rows } = await sql<{ ctid: string; j: string }>`
      select ctid::text as ctid, row_to_json(t)::text as j from ${sql.id(name)} t where row_to_json(t)::text ~ ${CANDIDATE_SQL}`.execute(db);
    for (const row of rows) {
      const record = JSON.parse(row.j) as Record<string, unknown>;
      const id = String(record.id ?? record.seq ?? row.ctid);
      for (const [column, value] of Object.entries(record)) {
        if (PUBLIC_COLUMNS[`${name}.${column}`]) continue;
        const text = typeof value === 'string' ? value : JSON.stringify(value);
        for (const rule of secretShapes(text ?? '')) findings.push({ where: `${label} ${name}.${column} row ${id}`, rule });
      }
    }
  }
  return findings;
}

/** Every line of every file in `dir` (the captured broker logs), reported as `<file>:<line>`. */
export async function scanLogs(dir: string): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const file of (await readdir(dir).catch(() => [])).sort()) {
    const lines = (await readFile(path.join(dir, file), 'utf8')).split('\n');
    lines.forEach((line, i) => {
      for (const rule of secretShapes(line)) findings.push({ where: `log ${file}:${i + 1}`, rule });
    });
  }
  return findings;
}

/** Where a test run keeps what its teardown reads: broker logs, and findings of databases already dropped. */
export const runPaths = (runDir: string) => ({ logs: path.join(runDir, 'logs'), findings: path.join(runDir, 'findings') });

/** Keeps the findings of a database about to be dropped, for the teardown to report. */
export async function keepFindings(runDir: string, label: string, findings: Finding[]): Promise<void> {
  if (findings.length === 0) return;
  const dir = runPaths(runDir).findings;
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, `${label}.json`), JSON.stringify(findings));
}

/** The findings kept by every database dropped during the run. */
export async function keptFindings(runDir: string): Promise<Finding[]> {
  const dir = runPaths(runDir).findings;
  const files = await readdir(dir).catch(() => []);
  return (await Promise.all(files.map(async (f) => JSON.parse(await readFile(path.join(dir, f), 'utf8')) as Finding[]))).flat();
}
