import { UsageError, type Command, type CommandGroup } from '../command.js';
import { adminOptions, adminRequest, nextPageHint, output, queryString, segment } from '../admin-client.js';
import { formatFields, formatTable } from '../table.js';

type Grant = Record<string, unknown>;

const commonFor = (role: string) => `  --json               print the broker's JSON answer instead of a table
  --admin-key <key>    ${role} (env TESSERA_ADMIN_KEY, or ./data/admin-key in demo mode)
  --broker <url>       broker base URL (env TESSERA_URL, default http://127.0.0.1:8080)`;
const common = commonFor('a viewer key or above');

const list: Command = {
  name: 'grants list',
  summary: 'list grants, newest first',
  usage: `Usage: tessera grants list [options]

Lists grants, newest first.

Options:
  --workload <id>      only this workload's grants
  --task <name>        only grants for this task
  --status <status>    active, expired, completed or revoked
  --active             only grants usable now (active and not past their expiry)
  --limit <n>          at most n grants (default 50)
  --cursor <cursor>    the next page, as printed after the previous one
${common}`,
  options: { ...adminOptions, workload: { type: 'string' }, task: { type: 'string' }, status: { type: 'string' }, active: { type: 'boolean' }, limit: { type: 'string' }, cursor: { type: 'string' } },
  async run(v) {
    const body = await adminRequest(v, 'GET', `/grants${queryString({ workload: v.workload, task: v.task, status: v.status, active: v.active, limit: v.limit, cursor: v.cursor })}`);
    output(v, body, () =>
      formatTable(body.items as Grant[], [
        ['id', (g) => g.id],
        ['workload', (g) => g.workload_id],
        ['task', (g) => g.task],
        ['status', (g) => g.status],
        ['issued', (g) => g.issued_at],
        ['expires', (g) => g.expires_at],
        ['ended by', (g) => g.ended_by],
      ]),
    );
    if (!v.json) nextPageHint(body);
    return 0;
  },
};

const show: Command = {
  name: 'grants show',
  summary: 'show one grant',
  usage: `Usage: tessera grants show <grant-id> [options]

Shows one grant: its task, parameters, scopes, lifetime, and who ended it and why.

Options:
${common}`,
  options: adminOptions,
  allowPositionals: true,
  async run(v, positionals) {
    if (positionals.length !== 1) throw new UsageError('give exactly one grant id');
    const g = await adminRequest(v, 'GET', `/grants/${segment(positionals[0]!)}`);
    output(v, g, () =>
      formatFields([
        ['id', g.id],
        ['workload', g.workload_id],
        ['task', g.task],
        ['params', JSON.stringify(g.params)],
        ['scopes', g.scopes],
        ['audience', g.audience],
        ['purpose', g.purpose],
        ['status', g.status],
        ['issued', g.issued_at],
        ['expires', g.expires_at],
        ['ended', g.ended_at],
        ['ended by', g.ended_by],
        ['end reason', g.end_reason],
        ['uses', g.max_uses ? `${String(g.use_count)}/${String(g.max_uses)}` : g.use_count],
        ['decision', g.decision_id],
        ['parent', g.parent_id],
      ]),
    );
    return 0;
  },
};

const revoke: Command = {
  name: 'grants revoke',
  summary: 'revoke one grant and its delegated children',
  usage: `Usage: tessera grants revoke <grant-id> --reason <text> [options]

Revokes one grant and every grant delegated from it. Revoking a grant that has already ended changes
nothing and says so.

Options:
  --reason <text>      why (required): recorded on the grant, its children and the audit trail
${commonFor('an operator key or above')}`,
  options: { ...adminOptions, reason: { type: 'string' } },
  allowPositionals: true,
  async run(v, positionals) {
    if (positionals.length !== 1) throw new UsageError('give exactly one grant id');
    if (!v.reason) throw new UsageError('--reason is required: say why, it is recorded');
    const r = await adminRequest(v, 'POST', `/grants/${segment(positionals[0]!)}/revoke`, { reason: v.reason });
    const revoked = r.revoked as string[];
    output(v, r, () =>
      formatFields([
        ['grant', r.grant_id],
        ['status', r.status],
        ['ended by', r.ended_by],
        ['changed', r.changed ? 'yes' : 'no (it had already ended)'],
        ['revoked', revoked.length ? revoked.join(' ') : '(none)'],
      ]),
    );
    return 0;
  },
};

export const grantsCommands: CommandGroup = { name: 'grants', summary: 'list and show grants; revoke one (admin)', commands: [list, show, revoke] };
