import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createApp } from './app.js';
import { createDatabase } from './db/database.js';
import { prepareDatabase } from './db/prepare.js';
import { Registry } from './config/registry.js';
import { applyConfigDocument } from './config/registry.repository.js';
import { loadConfigFolder } from './config/load-folder.js';
import type { ConfigDocument } from './config/spec.js';
import { KeyStore } from './keys/keystore.js';
import type { Kek } from './keys/kek.js';
import { IssuerKeys } from './identity/issuer-keys.js';
import { policyDecider } from './decisions/decider.js';
import { ensureBootstrapAdminKey } from './http/admin/admin-keys.js';
import { AdminIssuers, type AdminIssuerSpec } from './http/admin/admin-issuers.js';
import { systemClock, type Clock } from './lib/clock.js';
import { startScheduler } from './scheduler/scheduler.js';
import type { Deps } from './deps.js';
import { AuditSealer } from './audit/sealer.js';
import { startSealerThread } from './audit/sealer-thread.js';
import { reevaluateForSignals } from './decisions/reevaluation.js';
import { signalFollowUps } from './signals/follow-up.js';
import { RequestCounter } from './decisions/request-counter.js';
import { StatusIndexAllocator } from './grants/status-index.js';
import { MintWriter } from './grants/mint.repository.js';
import { watchProcess } from './lib/process-metrics.js';

/** How often a replica reloads signing keys, so a rotation made by another replica reaches its JWKS. */
const KEY_REFRESH_MS = 30_000;
/** How long shutdown waits for in-flight requests before closing their connections. */
const SHUTDOWN_GRACE_MS = 10_000;

export interface BrokerOptions {
  /** The broker's own, restricted role. */
  databaseUrl: string;
  /** The schema owner, to migrate and grant the broker role its rights; without it the broker's role migrates. */
  ownerDatabaseUrl?: string | undefined;
  kek: Kek;
  log: Logger;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Public base URL; defaults to http://host:port once listening. */
  issuer?: string;
  clock?: Clock;
  configDir?: string;
  config?: ConfigDocument;
  bootstrapAdminKey?: string;
  /** Human IdPs trusted for admin logins (TESSERA_ADMIN_ISSUERS). */
  adminIssuers?: AdminIssuerSpec[];
  poolMax?: number;
  /** Run the lifecycle jobs on this replica (default true); tests that drive jobs by hand turn it off. */
  scheduler?: boolean;
}

export interface Broker {
  url: string;
  deps: Deps;
  server: http.Server;
  close(): Promise<void>;
}

/** Migrates, loads keys and configuration, and starts the HTTP server: one broker replica. */
export async function startBroker(o: BrokerOptions): Promise<Broker> {
  const clock = o.clock ?? systemClock;
  const log = o.log;
  const { db } = createDatabase({
    url: o.databaseUrl,
    maxConnections: o.poolMax,
    onPoolError: (err) => log.warn({ err: err.message }, 'idle database connection failed'),
  });
  const { applied } = await prepareDatabase({ db, ownerUrl: o.ownerDatabaseUrl, url: o.databaseUrl, log });
  if (applied.length) log.info({ migrations: applied }, 'database migrated');

  const keys = new KeyStore(db, o.kek, clock);
  await keys.init();
  if (o.bootstrapAdminKey) await ensureBootstrapAdminKey(db, o.bootstrapAdminKey, clock.now());

  const config = o.config ?? (o.configDir ? await loadConfigFolder(o.configDir) : undefined);
  if (config) {
    const r = await applyConfigDocument(db, config, 'system:startup', clock.now());
    log.info({ version: r.version, changed: r.changed, source: o.configDir ?? 'inline' }, 'configuration applied');
  }
  const registry = new Registry(db, (err) => log.warn({ err: (err as Error).message }, 'registry refresh failed'));
  await registry.load();
  registry.startPolling();
  const keyTimer = setInterval(() => keys.refresh().catch((err) => log.warn({ err: err.message }, 'key refresh failed')), KEY_REFRESH_MS);
  keyTimer.unref();

  const audit = new AuditSealer(db, clock, log, startSealerThread(o.databaseUrl, log));
  audit.start();
  const requests = new RequestCounter(db);
  await requests.start();
  const deps: Deps = {
    db,
    clock,
    log,
    registry,
    keys,
    kek: o.kek,
    audit,
    issuerKeys: new IssuerKeys(clock, (issuer, err) => log.warn({ issuer, err: err.message }, 'issuer JWKS fetch failed')),
    adminIssuers: new AdminIssuers(o.adminIssuers ?? [], clock),
    requests,
    statusIndexes: new StatusIndexAllocator(db),
    mints: new MintWriter(db),
    decide: policyDecider(db, () => registry.snapshot, requests),
    issuer: o.issuer ?? '',
  };
  // Continuous authorization: a signal about a subject re-decides the grants that relied on it.
  deps.onSignals = async (signals) => void (await reevaluateForSignals(deps, signals));
  const server = http.createServer(createApp(deps));
  // Slow or idle clients must not pin sockets forever.
  server.requestTimeout = 15_000;
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(o.port ?? 8080, o.host ?? '127.0.0.1', resolve));
  const { address, port } = server.address() as AddressInfo;
  const url = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
  deps.issuer = o.issuer ?? url;
  const scheduler = o.scheduler === false ? undefined : startScheduler(deps);
  const unwatch = watchProcess();

  let closed = false;
  return {
    url,
    deps,
    server,
    async close() {
      if (closed) return;
      closed = true;
      registry.stop();
      clearInterval(keyTimer);
      unwatch();
      await scheduler?.stop();
      const force = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
      server.closeIdleConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      clearTimeout(force);
      await signalFollowUps(deps).settled();
      await audit.stop();
      await requests.stop();
      await db.destroy();
    },
  };
}
