import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/db/embedded.js';
import { sleep } from './stats.js';
import { processCpuSeconds, threadCpuSeconds, threadWaitSeconds } from './proc.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAX_ERROR_LINES = 20;
/** A broker migrates and loads keys and config before it listens; this is ample on a loaded machine. */
const START_TIMEOUT_MS = 30_000;

/** A server in its own OS process; for the broker, `node --import tsx src/main.ts`, as operators run it. */
export interface BrokerProcess {
  url: string;
  pid: number;
  child: ChildProcess;
  /** User + system CPU seconds the process has used so far. */
  cpuSeconds(): number;
  /** The same for its main thread alone: the one that serves requests (not the sealer's, libuv's or V8's helpers). */
  requestThreadCpuSeconds(): number;
  /** Seconds its main thread has been runnable but waiting for a core (NaN without schedstat). */
  requestThreadWaitSeconds(): number;
  rssBytes(): number;
  alive(): boolean;
  /** SIGTERM (graceful shutdown, writes a --cpu-prof profile), SIGKILL if it does not exit in time. */
  stop(): Promise<void>;
  stderrTail(): string;
  /** The first error-level (pino level 50+) log lines, for a drill to show what a 5xx was. */
  errorLines(): string[];
}

export interface SpawnBrokerOptions {
  databaseUrl: string;
  /** The schema owner, for migrations (DATABASE_OWNER_URL); without it the broker's role migrates. */
  ownerDatabaseUrl?: string;
  configDir: string;
  kek?: string;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeArgs?: string[];
  logLevel?: string;
  env?: Record<string, string>;
  /** The checkout to run (its src/ and node_modules); the repository's own by default. */
  root?: string;
}

/** Starts a broker process and waits until /healthz answers. */
export async function spawnBroker(o: SpawnBrokerOptions): Promise<BrokerProcess> {
  return spawnServer(['--import', 'tsx', ...(o.nodeArgs ?? []), 'src/main.ts'], (port) => ({
    DATABASE_URL: o.databaseUrl,
    ...(o.ownerDatabaseUrl ? { DATABASE_OWNER_URL: o.ownerDatabaseUrl } : {}),
    TESSERA_KEK: o.kek ?? randomBytes(32).toString('base64url'),
    TESSERA_CONFIG_DIR: o.configDir,
    PORT: String(port),
    LOG_LEVEL: o.logLevel ?? 'warn',
    ...o.env,
  }), '/healthz', o.root);
}

/** Starts `node <args>` from the repository root (or `root`) with PORT set, and waits until `healthPath` answers 2xx. */
export async function spawnServer(args: string[], env: (port: number) => Record<string, string>, healthPath: string, root = REPO_ROOT): Promise<BrokerProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, PORT: String(port), ...env(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let partial = '';
  const errors: string[] = [];
  // pino logs to stdout, start-up failures go to stderr: read both (an unread pipe would block the broker).
  const onOutput = (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-8_000);
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (errors.length < MAX_ERROR_LINES && /"level":(5|6)\d/.test(line)) errors.push(line.slice(0, 2_000));
  };
  child.stdout!.on('data', onOutput);
  child.stderr!.on('data', onOutput);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const pid = child.pid!;
  const alive = () => child.exitCode === null && child.signalCode === null;
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (!alive()) throw new Error(`${args.at(-1)} exited during start-up:\n${stderr}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${args.at(-1)} did not answer ${healthPath} within ${START_TIMEOUT_MS} ms:\n${stderr}`);
    }
    if (await fetch(`${url}${healthPath}`).then((r) => r.ok, () => false)) break;
    await sleep(100);
  }
  return {
    url,
    pid,
    child,
    cpuSeconds() {
      return processCpuSeconds(pid);
    },
    requestThreadCpuSeconds() {
      return threadCpuSeconds(pid);
    },
    requestThreadWaitSeconds() {
      return threadWaitSeconds(pid);
    },
    rssBytes() {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : NaN;
    },
    alive,
    async stop() {
      if (!alive()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
    stderrTail: () => stderr,
    errorLines: () => errors,
  };
}
