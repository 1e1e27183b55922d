import { UsageError, type Command, type CommandGroup } from '../command.js';
import { adminOptions, adminRequest, nextPageHint, output, queryString, segment } from '../admin-client.js';
import { formatFields, formatTable } from '../table.js';

type Workload = Record<string, unknown>;

const keyHelp = (role: string) => `  --json               print the broker's JSON answer instead of a table
  --admin-key <key>    ${role} (env TESSERA_ADMIN_KEY, or ./data/admin-key in demo mode)
  --broker <url>       broker base URL (env TESSERA_URL, default http://127.0.0.1:8080)`;

const statusFields = (w: Workload): Array<[string, unknown]> => [
  ['id', w.id],
  ['kind', w.kind],
  ['owner', w.owner],
  ['status', w.status],
  ['status reason', w.status_reason],
  ['changed by', w.status_changed_by],
  ['changed at', w.status_changed_at],
];

const list: Command = {
  name: 'workloads list',
  summary: 'list workloads',
  usage: `Usage: tessera workloads list [options]

Lists registered workloads in id order.

Options:
  --status <status>    active, suspended or retired
  --kind <kind>        ci, agent or service
  --owner <owner>      only this owner's workloads
  --limit <n>          at most n workloads (default 50)
  --cursor <cursor>    the next page, as printed after the previous one
${keyHelp('a viewer key or above')}`,
  options: { ...adminOptions, status: { type: 'string' }, kind: { type: 'string' }, owner: { type: 'string' }, limit: { type: 'string' }, cursor: { type: 'string' } },
  async run(v) {
    const body = await adminRequest(v, 'GET', `/workloads${queryString({ status: v.status, kind: v.kind, owner: v.owner, limit: v.limit, cursor: v.cursor })}`);
    output(v, body, () =>
      formatTable(body.items as Workload[], [
        ['id', (w) => w.id],
        ['kind', (w) => w.kind],
        ['owner', (w) => w.owner],
        ['status', (w) => w.status],
        ['reason', (w) => (w.status === 'active' ? '' : w.status_reason)],
      ]),
    );
    if (!v.json) nextPageHint(body);
    return 0;
  },
};

const show: Command = {
  name: 'workloads show',
  summary: 'show one workload and its spec',
  usage: `Usage: tessera workloads show <workload-id> [options]

Shows one workload: owner, kind, live status (who set it and why) and its spec.

Options:
${keyHelp('a viewer key or above')}`,
  options: adminOptions,
  allowPositionals: true,
  async run(v, positionals) {
    if (positionals.length !== 1) throw new UsageError('give exactly one workload id');
    const w = await adminRequest(v, 'GET', `/workloads/${segment(positionals[0]!)}`);
    output(v, w, () => `${formatFields(statusFields(w))}spec:\n${JSON.stringify(w.spec, null, 2).replace(/^/gm, '  ')}\n`);
    return 0;
  },
};

/** suspend, retire, activate: the same call with a different verb. */
function lifecycle(verb: 'suspend' | 'retire' | 'activate', summary: string, detail: string): Command {
  return {
    name: `workloads ${verb}`,
    summary,
    usage: `Usage: tessera workloads ${verb} <workload-id> --reason <text> [options]

${detail}

Options:
  --reason <text>      why (required): recorded with the change and on any grant it ends
${keyHelp('an operator key or above')}`,
    options: { ...adminOptions, reason: { type: 'string' } },
    allowPositionals: true,
    async run(v, positionals) {
      if (positionals.length !== 1) throw new UsageError('give exactly one workload id');
      if (!v.reason) throw new UsageError('--reason is required: say why, it is recorded');
      const w = await adminRequest(v, 'POST', `/workloads/${segment(positionals[0]!)}/${verb}`, { reason: v.reason });
      output(v, w, () => formatFields([...statusFields(w), ['grants revoked', w.revoked_grants]]));
      return 0;
    },
  };
}

export const workloadsCommands: CommandGroup = {
  name: 'workloads',
  summary: 'list, show, suspend, retire and activate workloads (admin)',
  commands: [
    list,
    show,
    lifecycle('suspend', 'suspend a workload and revoke its active grants (kill switch)', 'Suspends a workload: it gets no new grant, and every grant it holds is revoked now.'),
    lifecycle('retire', 'retire a workload for good and revoke its active grants', 'Retires a workload: like suspend, for a workload that is gone.'),
    lifecycle('activate', 'let a suspended or retired workload ask for grants again', 'Activates a suspended or retired workload. Grants revoked earlier stay revoked.'),
  ],
};
