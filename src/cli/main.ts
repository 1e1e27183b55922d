import { dispatch, listHelp, type Command, type CommandGroup } from './command.js';
import { tokenCommand } from './commands/token.js';
import { applyCommand } from './commands/apply.js';
import { verifyCommand } from './commands/verify.js';
import { policyCommand } from './commands/policy-test.js';
import { auditCommand } from './commands/audit.js';
import { grantsCommands } from './commands/grants.js';
import { workloadsCommands } from './commands/workloads.js';
import { adminCommands } from './commands/admin-keys.js';
import { approvalsCommands } from './commands/approvals.js';

const commands: Array<Command | CommandGroup> = [
  tokenCommand,
  verifyCommand,
  applyCommand,
  policyCommand,
  auditCommand,
  grantsCommands,
  approvalsCommands,
  workloadsCommands,
  adminCommands,
];

const help = listHelp(
  'tessera: just-in-time credentials for non-human identities',
  'tessera <command> [options]     (tessera <command> --help for its options)',
  commands,
);

process.exitCode = await dispatch(help, 'tessera', commands, process.argv.slice(2));
