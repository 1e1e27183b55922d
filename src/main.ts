import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseEnv } from './config/env.js';
import { createLogger } from './lib/logger.js';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from './db/embedded.js';
import { loadKek } from './keys/kek.js';
import { newAdminKey } from './http/admin/admin-keys.js';
import { startBroker } from './broker.js';

const DEMO_CONFIG_DIR = 'config/demo';

async function main(): Promise<void> {
  let env;
  try {
    env = parseEnv(process.env);
  } catch (err) {
    console.error(`tessera: ${(err as Error).message}`);
    process.exit(2);
  }
  const log = createLogger(env.LOG_LEVEL);
  const dataDir = path.resolve(env.TESSERA_DATA_DIR);
  const demo = !env.DATABASE_URL;

  let embedded: EmbeddedPostgresHandle | undefined;
  let databaseUrl = env.DATABASE_URL;
  let ownerDatabaseUrl = env.DATABASE_OWNER_URL;
  if (!databaseUrl) {
    log.info({ dir: dataDir }, 'no DATABASE_URL: starting embedded Postgres');
    embedded = await startEmbeddedPostgres({ dir: dataDir, port: env.TESSERA_EMBEDDED_PG_PORT, onLog: (l) => log.debug({ pg: l }) });
    // Migrations as the schema owner, the broker as its restricted role: append-only holds in demo mode too.
    databaseUrl = embedded.brokerUrl;
    ownerDatabaseUrl = embedded.ownerUrl;
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
    poolMax: env.TESSERA_DB_POOL_MAX,
    scheduler: env.TESSERA_SCHEDULER === 'on',
  }).catch(async (err) => {
    await embedded?.stop();
    throw err;
  });
  log.info({ url: broker.url, issuer: broker.deps.issuer, config: configDir ?? null }, 'tessera listening');
  if (demo) printDemoBanner(broker.url, adminKeyFile, newDemoKey);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    await broker.close();
    await embedded?.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

function printDemoBanner(url: string, adminKeyFile: string, newKey: boolean): void {
  process.stderr.write(`
  tessera is running at ${url} (demo mode: embedded Postgres under ./data, config from ${DEMO_CONFIG_DIR})

  Get a first token as the demo agent (a workload with a registered key, RFC 7523):
    npx tessera token --broker ${url} --task hello-world --client-id demo-agent \\
      --assertion-key ${DEMO_CONFIG_DIR}/keys/demo-agent.private.jwk.json --json

  Verify it as a downstream service would (through JWKS):
    npx tessera verify --broker ${url} --audience https://hello.example <token>

  Admin key (${newKey ? 'generated now, ' : ''}role admin): stored in ${adminKeyFile}

`);
}

main().catch((err) => {
  console.error(`tessera: failed to start: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
