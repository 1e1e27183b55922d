import { runCommand, type Command } from './command.js';
import { tokenCommand } from './commands/token.js';
import { applyCommand } from './commands/apply.js';
import { verifyCommand } from './commands/verify.js';
import { policyCommand } from './commands/policy-test.js';
import { auditCommand } from './commands/audit.js';

const commands: Command[] = [tokenCommand, verifyCommand, applyCommand, policyCommand, auditCommand];

function help(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return `tessera: just-in-time credentials for non-human identities

Usage: tessera <command> [options]     (tessera <command> --help for its options)

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}
`;
}

/** Dispatches argv to a command; returns the exit code. */
export async function cli(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help());
    return name ? 0 : 2;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    process.stderr.write(`tessera: unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  return runCommand(cmd, rest);
}

process.exitCode = await cli(process.argv.slice(2));
