import { randomBytes, randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { inject } from 'vitest';
import { createLogger } from '../../src/lib/logger.js';
import { runPaths } from './secret-scan.js';
import { startBroker, type Broker, type BrokerOptions } from '../../src/broker.js';
import { Kek } from '../../src/keys/kek.js';
import { ManualClock } from '../../src/lib/clock.js';
import type { ConfigDocument } from '../../src/config/spec.js';
import { validateConfig } from '../../src/config/load-folder.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import { scrape } from '../../scripts/bench/broker-metrics.js';

export const TEST_ADMIN_KEY = `tsk_${randomBytes(32).toString('base64url')}`;

export interface TestBroker extends Broker {
  clock: ManualClock;
  database: TestDatabase;
  /** Log lines the broker wrote, parsed (tests assert on them, e.g. that no token was logged). */
  logs: Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

/** A real broker on a real port over its own real Postgres database, with a clock tests can move. */
export async function startTestBroker(
  config: Partial<Record<keyof ConfigDocument, unknown[]>>,
  options: Partial<BrokerOptions> & { database?: TestDatabase } = {},
): Promise<TestBroker> {
  const database = options.database ?? (await createTestDatabase());
  const clock = (options.clock as ManualClock | undefined) ?? new ManualClock();
  const logs: Array<Record<string, unknown>> = [];
  // The broker's own logger (with its redaction), at debug; every line is also kept in this run's log
  // folder, which the suite's teardown scans for secrets once every file has run.
  const logFile = path.join(runPaths(inject('testRunDir')).logs, `broker-${randomUUID()}.ndjson`);
  const log = createLogger('debug', {
    write: (line: string) => {
      appendFileSync(logFile, line);
      logs.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
  const broker = await startBroker({
    databaseUrl: database.url,
    ownerDatabaseUrl: database.ownerUrl,
    kek: new Kek(randomBytes(32)),
    log,
    port: 0,
    clock,
    config: validateConfig(config),
    bootstrapAdminKey: TEST_ADMIN_KEY,
    ...options,
  });
  return {
    ...broker,
    clock,
    database,
    logs,
    async stop() {
      await broker.close();
      if (!options.database) await database.drop();
    },
  };
}

/**
 * One sample of a broker's /metrics, as Prometheus scrapes it: the line `name{labels}` (`labels` as
 * written there, e.g. `stage="write"`; none for an unlabelled metric). 0 when the line is absent.
 */
export async function metricValue(brokerUrl: string, name: string, labels = ''): Promise<number> {
  return (await scrapeMetrics(brokerUrl))(name, labels);
}

/** One scrape of a broker's /metrics, read as metricValue reads a line: for values that must agree. */
export async function scrapeMetrics(brokerUrl: string): Promise<(name: string, labels?: string) => number> {
  const values = await scrape(brokerUrl);
  return (name, labels = '') => values.get(labels ? `${name}{${labels}}` : name) ?? 0;
}

/** POSTs JSON (or a form, when `form` is set) and returns status, headers and the parsed body. */
export async function post(url: string, body: unknown, headers: Record<string, string> = {}, form = false) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json', ...headers },
    body: form ? new URLSearchParams(body as Record<string, string>).toString() : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { raw: text };
  }
  return { status: res.status, headers: res.headers, body: json as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
}
