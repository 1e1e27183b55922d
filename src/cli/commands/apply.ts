import { existsSync } from 'node:fs';
import { brokerUrl, call, describeError, UsageError, type Command } from '../command.js';
import { readConfigFolder, validateConfig, ConfigError } from '../../config/load-folder.js';
import { adminKey } from '../admin-client.js';

const usage = `Usage: tessera apply <dir> [options]

Validates a configuration folder (issuers, workloads, tasks as YAML or JSON files) and applies it to
the broker atomically as one version. Applying the same content twice changes nothing.

Options:
  --dry-run              validate locally and on the broker, apply nothing
  --reevaluate           after applying, re-decide every active grant under the new version and show
                         which would be revoked; add --yes to revoke them
  --admin-key <key>      an operator or admin key (env TESSERA_ADMIN_KEY, or ./data/admin-key in demo mode)
  --broker <url>         broker base URL (env TESSERA_URL, default http://127.0.0.1:8080)`;

export const applyCommand: Command = {
  name: 'apply',
  summary: 'validate and apply a configuration folder as one version',
  usage,
  allowPositionals: true,
  options: { 'dry-run': { type: 'boolean' }, 'admin-key': { type: 'string' }, reevaluate: { type: 'boolean' }, yes: { type: 'boolean' } },
  async run(v, positionals) {
    const [dir] = positionals;
    if (!dir || positionals.length > 1) throw new UsageError('give exactly one configuration folder');
    if (!existsSync(dir)) throw new UsageError(`${dir} does not exist`);
    let raw;
    try {
      raw = await readConfigFolder(dir);
      validateConfig(raw.sections);
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`tessera apply: ${dir}: ${err.message}\n`);
        return 1;
      }
      throw err;
    }
    process.stderr.write(`read ${raw.files.length} file(s) from ${dir}\n`);
    const url = `${brokerUrl(v)}/v1/admin/config${v['dry-run'] ? '?dry_run=true' : ''}`;
    const res = await call(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey(v)}` },
      body: JSON.stringify(raw.sections),
    });
    if (res.status >= 300) {
      process.stderr.write(`tessera apply: ${describeError(res.status, res.body)}\n`);
      return 1;
    }
    const b = res.body;
    process.stdout.write(
      v['dry-run']
        ? `valid: ${String(b.issuers)} issuer(s), ${String(b.workloads)} workload(s), ${String(b.tasks)} task(s); content ${String(b.content_hash).slice(0, 12)}\n`
        : b.changed
          ? `applied as version ${String(b.version)} (content ${String(b.content_hash).slice(0, 12)})\n`
          : `unchanged: version ${String(b.version)} already has this content\n`,
    );
    if (!v.reevaluate || v['dry-run']) return 0;
    return reevaluate(brokerUrl(v), adminKey(v), Boolean(v.yes));
  },
};

/** Shows what re-deciding every active grant would revoke; with `yes`, revokes it. */
async function reevaluate(broker: string, key: string, yes: boolean): Promise<number> {
  const res = await call(`${broker}/v1/admin/grants:reevaluate${yes ? '' : '?dry_run=true'}`, { method: 'POST', headers: { authorization: `Bearer ${key}` } });
  if (res.status >= 300) {
    process.stderr.write(`tessera apply: re-evaluation: ${describeError(res.status, res.body)}\n`);
    return 1;
  }
  const revoked = res.body.revoked as Array<{ grant_id: string; reason: string; cascaded: boolean }>;
  process.stdout.write(`${String(res.body.evaluated)} active grant(s) re-evaluated; ${revoked.length} ${yes ? 'revoked' : 'would be revoked'}\n`);
  for (const r of revoked) process.stdout.write(`  ${r.grant_id}${r.cascaded ? ' (delegated child)' : ''}: ${r.reason}\n`);
  if (!yes && revoked.length) process.stdout.write('run again with --reevaluate --yes to revoke them\n');
  return 0;
}
