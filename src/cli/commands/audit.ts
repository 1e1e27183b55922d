import { brokerUrl, call, describeError, UsageError, type Command } from '../command.js';
import { adminKey } from '../admin-client.js';

const usage = `Usage: tessera audit <verify | export> [options]

  verify                 check the audit hash chain; reports the first broken link and its position
  export [--since <t>]   write the audit log as JSON lines to standard output (for a SIEM), with a
                         progress line on standard error; --since takes an ISO time (2026-11-01T00:00:00Z)

Options:
  --admin-key <key>      a viewer (or higher) key (env TESSERA_ADMIN_KEY, or ./data/admin-key in demo mode)
  --broker <url>         broker base URL (env TESSERA_URL, default http://127.0.0.1:8080)`;

/** Progress is printed every this many exported events. */
const PROGRESS_EVERY = 1_000;

export const auditCommand: Command = {
  name: 'audit',
  summary: 'verify the audit hash chain, or export the audit log as JSON lines',
  usage,
  allowPositionals: true,
  options: { since: { type: 'string' }, 'admin-key': { type: 'string' } },
  async run(v, positionals) {
    const [sub] = positionals;
    const headers = { authorization: `Bearer ${adminKey(v)}` };
    if (sub === 'verify') {
      const res = await call(`${brokerUrl(v)}/v1/admin/audit/verify`, { headers });
      if (res.status === 200) {
        process.stdout.write(`audit chain intact: ${String(res.body.count)} events verified\n`);
        return 0;
      }
      if (res.status === 409) {
        process.stdout.write(`audit chain BROKEN at seq ${String(res.body.broken_at)} (${String(res.body.reason)}); ${String(res.body.count)} events verified before it\n`);
        return 1;
      }
      process.stderr.write(`tessera audit verify: ${describeError(res.status, res.body)}\n`);
      return 1;
    }
    if (sub === 'export') {
      const url = new URL(`${brokerUrl(v)}/v1/admin/audit/export`);
      if (v.since) url.searchParams.set('since', String(v.since));
      const res = await fetch(url, { headers });
      if (!res.ok || !res.body) {
        process.stderr.write(`tessera audit export: ${describeError(res.status, (await res.json().catch(() => ({}))) as Record<string, unknown>)}\n`);
        return 1;
      }
      let lines = 0;
      const decoder = new TextDecoder();
      for await (const chunk of res.body) {
        const text = decoder.decode(chunk, { stream: true });
        process.stdout.write(text);
        const before = lines;
        lines += text.split('\n').length - 1;
        if (Math.floor(lines / PROGRESS_EVERY) > Math.floor(before / PROGRESS_EVERY)) process.stderr.write(`\rexported ${lines} events`);
      }
      process.stderr.write(`${lines >= PROGRESS_EVERY ? '\r' : ''}exported ${lines} events\n`);
      return 0;
    }
    throw new UsageError('give verify or export');
  },
};
