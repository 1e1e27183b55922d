import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { brokerUrl, UsageError, type Command } from '../command.js';
import { adminKey } from '../admin-client.js';
import { ProgressLine, streamLines } from '../ndjson-stream.js';

const usage = `Usage: tessera audit <verify | export | purge> [options]

  verify                 check the audit hash chain and the decision and grant rows it recorded;
                         reports the first broken link and its position, then the head (seq and hash)
    --expect-head <seq>:<hash>   a head printed by an earlier verify: the chain must still reach it
                         with the same hash (detects the newest events deleted)
    --checkpoint <file>  read the expected head from <file> if it exists, and write the new head to
                         it after a successful verify (keep it away from the broker's database)
  export                 write the audit log as JSON lines to standard output (for a SIEM), with a
                         progress line on standard error, ending with the last seq exported
    --after-seq <seq>    only events after this seq: resume where the last export ended
    --since <t>          only events stamped at or after an ISO time (2026-11-01T00:00:00Z); an event
                         sealed late can carry an earlier time, so resume with --after-seq instead
  purge --before <t>     retention (admin role): delete the oldest events before an ISO time; each
                         batch is recorded as an audit.purged event, and verify still passes after it

Options:
  --admin-key <key>      a viewer key (admin for purge); env TESSERA_ADMIN_KEY, or ./data/admin-key in demo mode
  --broker <url>         broker base URL (env TESSERA_URL, default http://127.0.0.1:8080)`;

/** Export progress is printed every this many events; verify and purge print it when their total is larger. */
const PROGRESS_EVERY = 1_000;
const HEAD = /^(\d+):([0-9a-f]{64})$/;

type Headers = Record<string, string>;
type Line = { progress?: Record<string, number>; result?: Record<string, unknown>; error?: { status: number; detail: string } };

/** Runs a streamed admin operation; returns its result, or prints its error and returns undefined. */
async function operation(name: string, url: URL, init: RequestInit, onProgress: (p: Record<string, number>) => void) {
  let last: Line = {};
  await streamLines(url, { ...init, headers: { ...(init.headers as Headers), accept: 'application/x-ndjson' } }, (line) => {
    last = JSON.parse(line) as Line;
    if (last.progress) onProgress(last.progress);
  });
  if (last.result) return last.result;
  process.stderr.write(`\ntessera audit ${name}: ${last.error ? `${last.error.status} ${last.error.detail}` : 'the broker ended the answer early'}\n`);
  return undefined;
}

function expectedHead(v: Record<string, unknown>): string | undefined {
  const given = v['expect-head'] as string | undefined;
  const file = v.checkpoint as string | undefined;
  const head = given ?? (file && existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined);
  if (head !== undefined && !HEAD.test(head)) throw new UsageError(`${given ? '--expect-head' : `checkpoint ${file}`} must be <seq>:<hash>, as verify prints it`);
  return head;
}

async function verify(v: Record<string, unknown>, headers: Headers): Promise<number> {
  const url = new URL(`${brokerUrl(v)}/v1/admin/audit/verify`);
  const expect = expectedHead(v);
  if (expect) url.searchParams.set('expect_head', expect);
  const progress = new ProgressLine();
  const r = await operation('verify', url, { headers }, (p) => p.total! > PROGRESS_EVERY && progress.update(`verified ${p.checked} of ${p.total} events`));
  if (!r) return 1;
  if (!r.ok) {
    const where = r.table ? ` in ${String(r.table)} ${String(r.id)}` : '';
    progress.end();
    process.stdout.write(`audit chain BROKEN at seq ${String(r.broken_at)} (${String(r.reason)})${where}; ${String(r.count)} events verified before it\n`);
    return 1;
  }
  const head = r.head as { seq: string; hash: string };
  const checked = r.checkpoint === 'matched' ? `; reaches the expected head ${expect}` : r.checkpoint === 'purged' ? '; the expected head was purged since' : '';
  progress.done(`verified ${String(r.count)} events`);
  process.stdout.write(`audit chain intact: ${String(r.count)} events verified${checked}\nhead: ${head.seq}:${head.hash}\n`);
  const file = v.checkpoint as string | undefined;
  if (file) {
    // Replaced whole, so a crash mid-write never leaves a checkpoint that would fail the next verify.
    writeFileSync(`${file}.tmp`, `${head.seq}:${head.hash}\n`, { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }
  return 0;
}

async function exportLines(v: Record<string, unknown>, headers: Headers): Promise<number> {
  const url = new URL(`${brokerUrl(v)}/v1/admin/audit/export`);
  if (v.since) url.searchParams.set('since', String(v.since));
  if (v['after-seq']) url.searchParams.set('after_seq', String(v['after-seq']));
  const progress = new ProgressLine();
  let lines = 0;
  let last = '';
  await streamLines(url, { headers }, (line) => {
    process.stdout.write(`${line}\n`);
    last = line;
    if (++lines % PROGRESS_EVERY === 0) progress.update(`exported ${lines} events`);
  });
  const lastSeq = last ? String((JSON.parse(last) as { seq: string }).seq) : null;
  progress.done(`exported ${lines} events${lastSeq ? `; last seq ${lastSeq} (resume with --after-seq ${lastSeq})` : ''}`);
  return 0;
}

async function purge(v: Record<string, unknown>, headers: Headers): Promise<number> {
  if (!v.before) throw new UsageError('purge needs --before <ISO time>');
  const url = new URL(`${brokerUrl(v)}/v1/admin/audit/purge`);
  const init = { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ before: v.before }) };
  const progress = new ProgressLine();
  const r = await operation('purge', url, init, (p) => p.purged! > PROGRESS_EVERY && progress.update(`purged ${p.purged} events`));
  if (!r) return 1;
  const events = r.events as string[];
  progress.done(`purged ${String(r.purged)} events`);
  process.stdout.write(`purged ${String(r.purged)} events${r.through_seq ? ` through seq ${String(r.through_seq)}` : ''}; recorded as audit.purged at seq ${events.join(', ')}\n`);
  return 0;
}

export const auditCommand: Command = {
  name: 'audit',
  summary: 'verify the audit hash chain, export the audit log as JSON lines, or purge old events',
  usage,
  allowPositionals: true,
  options: {
    since: { type: 'string' },
    'after-seq': { type: 'string' },
    'expect-head': { type: 'string' },
    checkpoint: { type: 'string' },
    before: { type: 'string' },
    'admin-key': { type: 'string' },
  },
  async run(v, positionals) {
    const [sub] = positionals;
    const subcommands: Record<string, typeof verify> = { verify, export: exportLines, purge };
    const run = subcommands[sub ?? ''];
    if (!run) throw new UsageError('give verify, export or purge');
    return run(v, { authorization: `Bearer ${adminKey(v)}` });
  },
};
