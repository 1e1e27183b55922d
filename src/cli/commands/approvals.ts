import { UsageError, type Command, type CommandGroup } from '../command.js';
import { adminOptions, adminRequest, nextPageHint, output, queryString, segment } from '../admin-client.js';
import { formatFields, formatTable } from '../table.js';

type Approval = Record<string, unknown>;

const common = (role: string) => `  --json               print the broker's JSON answer instead of a table
  --admin-key <key>    ${role} key or above (env TESSERA_ADMIN_KEY, or ./data/admin-key in demo mode)
  --broker <url>       broker base URL (env TESSERA_URL, default http://127.0.0.1:8080)`;

const progress = (a: Approval) => `${String(a.approvals)}/${String(a.required_approvals)}`;

const list: Command = {
  name: 'approvals list',
  summary: 'list step-up approval requests, newest first',
  usage: `Usage: tessera approvals list [options]

Lists step-up approval requests, newest first.

Options:
  --status <status>    pending, approved, denied, expired or redeemed
  --workload <id>      only this workload's requests
  --limit <n>          at most n requests (default 50)
  --cursor <cursor>    the next page, as printed after the previous one
${common('a viewer')}`,
  options: { ...adminOptions, status: { type: 'string' }, workload: { type: 'string' }, limit: { type: 'string' }, cursor: { type: 'string' } },
  async run(v) {
    const body = await adminRequest(v, 'GET', `/approvals${queryString({ status: v.status, workload: v.workload, limit: v.limit, cursor: v.cursor })}`);
    output(v, body, () =>
      formatTable(body.items as Approval[], [
        ['id', (a) => a.id],
        ['workload', (a) => a.workload_id],
        ['task', (a) => a.task],
        ['params', (a) => JSON.stringify(a.params)],
        ['status', (a) => a.status],
        ['approvals', progress],
        ['expires', (a) => a.expires_at],
      ]),
    );
    if (!v.json) nextPageHint(body);
    return 0;
  },
};

const show: Command = {
  name: 'approvals show',
  summary: 'show one approval request: the action, the decision behind it, the votes',
  usage: `Usage: tessera approvals show <approval-id> [options]

Shows one approval request in full: the action it is bound to (task and parameters), why policy asked
for a step-up (reasons, determining policies, signals), and every vote.

Options:
${common('a viewer')}`,
  options: adminOptions,
  allowPositionals: true,
  async run(v, positionals) {
    if (positionals.length !== 1) throw new UsageError('give exactly one approval id');
    const a = await adminRequest(v, 'GET', `/approvals/${segment(positionals[0]!)}`);
    const d = (a.decision ?? {}) as Record<string, unknown>;
    const signals = (d.signals ?? {}) as { used?: Array<Record<string, unknown>> };
    output(v, a, () =>
      formatFields([
        ['id', a.id],
        ['workload', `${String(a.workload_id)} (owner ${String(a.workload_owner)}${a.workload_sponsor ? `, sponsor ${String(a.workload_sponsor)}` : ''})`],
        ['task', a.task],
        ['params', JSON.stringify(a.params)],
        ['purpose', a.purpose],
        ['status', a.status],
        ['approvals', progress(a)],
        ['created', a.created_at],
        ['expires', a.expires_at],
        ['reasons', (d.reasons as string[] | undefined)?.join('; ')],
        ['policies', d.determining_policies],
        ['signals', (signals.used ?? []).map((s) => `${String(s.type)}=${JSON.stringify(s.value)} (${String(s.status)}, ${String(s.source)})`).join('; ')],
        ['decision', a.decision_id],
        ...((a.votes as Approval[]).map((x) => [`vote`, `${String(x.person)} (${String(x.approver)}) ${String(x.vote)} ${x.comment ? `"${String(x.comment)}"` : ''} at ${String(x.at)}`]) as Array<[string, unknown]>),
        ['grant', a.grant_id],
      ]),
    );
    return 0;
  },
};

function voteCommand(verb: 'approve' | 'deny'): Command {
  return {
    name: `approvals ${verb}`,
    summary: `${verb} a pending step-up request, with a comment`,
    usage: `Usage: tessera approvals ${verb} <approval-id> [--comment <text>] [options]

${verb === 'approve' ? 'Approves' : 'Denies'} a pending request as the admin key's name. A task may need several approvals
from different people; the requesting workload's owner and sponsor may not vote where the task forbids it.

Options:
  --comment <text>     why (recorded with the vote)
${common('an approver')}`,
    options: { ...adminOptions, comment: { type: 'string' } },
    allowPositionals: true,
    async run(v, positionals) {
      if (positionals.length !== 1) throw new UsageError('give exactly one approval id');
      const a = await adminRequest(v, 'POST', `/approvals/${segment(positionals[0]!)}/${verb}`, v.comment === undefined ? {} : { comment: v.comment });
      output(v, a, () => `approval ${String(a.id)}: ${String(a.status)} (${progress(a)} approvals)\n`);
      return 0;
    },
  };
}

export const approvalsCommands: CommandGroup = {
  name: 'approvals',
  summary: 'list, show, approve and deny step-up requests (admin)',
  commands: [list, show, voteCommand('approve'), voteCommand('deny')],
};
