import { parseArgs, type ParseArgsConfig } from 'node:util';

/** One CLI command: its usage text, its options, and what it does with them. */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  allowPositionals?: boolean;
  run(values: Record<string, string | boolean | string[] | undefined>, positionals: string[]): Promise<number>;
}

/** Commands under one noun (`tessera grants list`): a group dispatches to its last word. */
export interface CommandGroup {
  name: string;
  summary: string;
  commands: Array<Command | CommandGroup>;
}

const isGroup = (c: Command | CommandGroup): c is CommandGroup => 'commands' in c;
const lastWord = (name: string) => name.slice(name.lastIndexOf(' ') + 1);

/** The help text of a command list: `title`, then one line per command. */
export function listHelp(title: string, usageLine: string, entries: Array<Command | CommandGroup>): string {
  const width = Math.max(...entries.map((c) => lastWord(c.name).length));
  return `${title}

Usage: ${usageLine}

Commands:
${entries.map((c) => `  ${lastWord(c.name).padEnd(width)}  ${c.summary}`).join('\n')}
`;
}

/** Finds the command (or group) named by argv's first word and runs it; returns the exit code. */
export async function dispatch(help: string, prefix: string, entries: Array<Command | CommandGroup>, argv: string[]): Promise<number> {
  const [word, ...rest] = argv;
  if (!word || word === '--help' || word === '-h' || word === 'help') {
    process.stdout.write(help);
    return word ? 0 : 2;
  }
  const found = entries.find((c) => lastWord(c.name) === word);
  if (!found) {
    process.stderr.write(`${prefix}: unknown command "${word}"\n\n${help}`);
    return 2;
  }
  if (!isGroup(found)) return runCommand(found, rest);
  const name = `tessera ${found.name}`;
  return dispatch(listHelp(`${name}: ${found.summary}`, `${name} <command> [options]     (${name} <command> --help for its options)`, found.commands), name, found.commands, rest);
}

/** A usage error: printed with the command's help, exit code 2. */
export class UsageError extends Error {}

/** Options every command takes. */
export const commonOptions = {
  help: { type: 'boolean', short: 'h' },
  broker: { type: 'string' },
} as const;

/** The broker URL from --broker, TESSERA_URL, or the default local one. */
export const brokerUrl = (v: Record<string, unknown>) =>
  String(v.broker ?? process.env.TESSERA_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');

/** Parses argv for `cmd` and runs it; `--help` prints usage. */
export async function runCommand(cmd: Command, argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...commonOptions, ...cmd.options }, allowPositionals: cmd.allowPositionals ?? false, strict: true });
  } catch (err) {
    process.stderr.write(`tessera ${cmd.name}: ${(err as Error).message}\n\n${cmd.usage}\n`);
    return 2;
  }
  if (parsed.values.help) {
    process.stdout.write(`${cmd.usage}\n`);
    return 0;
  }
  try {
    return await cmd.run(parsed.values, parsed.positionals);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`tessera ${cmd.name}: ${err.message}\n\n${cmd.usage}\n`);
      return 2;
    }
    process.stderr.write(`tessera ${cmd.name}: ${(err as Error).message}\n`);
    return 1;
  }
}

/** Explains a broker error response (problem+json or RFC 6749) in one or more readable lines. */
export function describeError(status: number, body: Record<string, unknown>): string {
  const lines = [`${status} ${String(body.detail ?? body.error_description ?? body.error ?? body.title ?? 'error')}`];
  for (const e of (body.errors as Array<{ field: string; reason: string }> | undefined) ?? []) lines.push(`  ${e.field}: ${e.reason}`);
  for (const r of (body.reasons as string[] | undefined) ?? []) lines.push(`  reason: ${r}`);
  if (body.decision_id) lines.push(`  decision: ${String(body.decision_id)}`);
  if (body.request_id) lines.push(`  request id: ${String(body.request_id)}`);
  return lines.join('\n');
}

/** Sends a request to the broker and parses its JSON answer (whatever the status). */
export async function call(url: string, init: RequestInit): Promise<{ status: number; body: Record<string, unknown> }> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    throw new Error(`cannot reach the broker at ${new URL(url).origin}: ${(err as Error).cause ?? (err as Error).message}`, { cause: err });
  }
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as Record<string, unknown> };
  } catch {
    return { status: res.status, body: { detail: text.slice(0, 200) } };
  }
}
