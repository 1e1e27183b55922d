import { UsageError, type Command, type CommandGroup } from '../command.js';
import { adminOptions, adminRequest, output, segment } from '../admin-client.js';
import { formatFields, formatTable } from '../table.js';

type Key = Record<string, unknown>;

const common = `  --json               print the broker's JSON answer instead of a table
  --admin-key <key>    an admin key (env TESSERA_ADMIN_KEY, or ./data/admin-key in demo mode)
  --broker <url>       broker base URL (env TESSERA_URL, default http://127.0.0.1:8080)`;

const keyFields = (k: Key): Array<[string, unknown]> => [
  ['id', k.id],
  ['name', k.name],
  ['person', k.person],
  ['role', k.role],
  ['status', k.status],
  ['created by', k.created_by],
  ['expires', k.expires_at],
  ['revoked', k.revoked_at],
];

const create: Command = {
  name: 'admin keys create',
  summary: 'create an admin API key (shown once)',
  usage: `Usage: tessera admin keys create --name <name> --role <role> [options]

Creates an admin API key and prints it once: the broker keeps only its hash.

Options:
  --name <name>              who or what holds the key; actions are recorded as admin:<name>
  --role <role>              viewer, approver, operator or admin
  --person <who>             the person holding it (e.g. alice@example.com; default the name): one vote
                             per person on an approval, and no votes on their own workloads' requests
  --expires-in-days <days>   the key stops working after this many days (default: never)
${common}`,
  options: { ...adminOptions, name: { type: 'string' }, role: { type: 'string' }, 'expires-in-days': { type: 'string' }, person: { type: 'string' } },
  async run(v) {
    if (!v.name || !v.role) throw new UsageError('--name and --role are required');
    const days = v['expires-in-days'] === undefined ? undefined : Number(v['expires-in-days']);
    if (days !== undefined && !Number.isInteger(days)) throw new UsageError('--expires-in-days must be a whole number of days');
    const k = await adminRequest(v, 'POST', '/keys', { name: v.name, role: v.role, person: v.person, expires_in_days: days });
    output(v, k, () => `${formatFields([...keyFields(k), ['key', k.key]])}`);
    if (!v.json) process.stderr.write('Store the key now: it is not shown again.\n');
    return 0;
  },
};

const list: Command = {
  name: 'admin keys list',
  summary: 'list admin API keys (never their secrets)',
  usage: `Usage: tessera admin keys list [options]

Lists admin API keys with their role and status. Secrets are never shown.

Options:
${common}`,
  options: adminOptions,
  async run(v) {
    const body = await adminRequest(v, 'GET', '/keys');
    output(v, body, () =>
      formatTable(body.items as Key[], [
        ['id', (k) => k.id],
        ['name', (k) => k.name],
        ['person', (k) => k.person],
        ['role', (k) => k.role],
        ['status', (k) => k.status],
        ['created by', (k) => k.created_by],
        ['expires', (k) => k.expires_at],
      ]),
    );
    return 0;
  },
};

const revoke: Command = {
  name: 'admin keys revoke',
  summary: 'revoke an admin API key at once',
  usage: `Usage: tessera admin keys revoke <key-id> [options]

Revokes an admin API key: it stops working with the next request. A key cannot revoke itself.

Options:
  --reason <text>      why (recorded with the revocation)
${common}`,
  options: { ...adminOptions, reason: { type: 'string' } },
  allowPositionals: true,
  async run(v, positionals) {
    if (positionals.length !== 1) throw new UsageError('give exactly one key id');
    const k = await adminRequest(v, 'POST', `/keys/${segment(positionals[0]!)}/revoke`, v.reason ? { reason: v.reason } : {});
    output(v, k, () => formatFields(keyFields(k)));
    return 0;
  },
};

export const adminCommands: CommandGroup = {
  name: 'admin',
  summary: 'administer the broker: admin keys',
  commands: [{ name: 'admin keys', summary: 'create, list and revoke admin API keys', commands: [create, list, revoke] }],
};
