import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import pg from 'pg';
import { pino } from 'pino';
import { inject } from 'vitest';
import { createDatabase, type Database } from '../../src/db/database.js';
import { prepareDatabase } from '../../src/db/prepare.js';
import { migrateToLatest } from '../../src/db/migrator.js';
import { OWNER_ROLE, ensureOwnedDatabase } from '../../src/db/roles.js';
import { appendAuditEvent, appendAuditEvents, listAuditEvents } from '../../src/audit/audit.repository.js';
import { recordAudit, sealPendingAudit } from '../../src/audit/audit-outbox.js';
import { purgeAuditEventsBefore } from '../../src/audit/audit-retention.js';
import { verifyAuditChain } from '../../src/audit/verify-chain.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { withDatabase } from '../support/global-setup.js';
import { sampleEvent } from './support.js';

const NOW = new Date('2026-11-22T15:00:00.000Z');
const DENIED = /permission denied|must be owner/;

describe('the broker database role and the audit log', () => {
  let t: TestDatabase;
  /** The broker's own role, exactly as a broker under test connects. */
  let broker: Database;
  beforeAll(async () => {
    t = await createTestDatabase();
    broker = createDatabase({ url: t.url }).db;
    await appendAuditEvents(broker, [1, 2, 3].map(sampleEvent), NOW);
  });
  afterAll(async () => {
    await broker.destroy();
    await t.drop();
  });

  it('may append and read, but not UPDATE, DELETE or TRUNCATE events, nor move the anchor', async () => {
    expect(await listAuditEvents(broker, { limit: 10 })).toHaveLength(3);
    await expect(sql`update audit_events set actor = 'admin:mallory'`.execute(broker)).rejects.toThrow(DENIED);
    await expect(sql`delete from audit_events where seq = 3`.execute(broker)).rejects.toThrow(DENIED);
    await expect(sql`truncate audit_events`.execute(broker)).rejects.toThrow(DENIED);
    await expect(sql`update audit_anchor set seq = 2`.execute(broker)).rejects.toThrow(DENIED);
    expect(await verifyAuditChain(broker)).toEqual({ ok: true, count: 3, head: { seq: '3', hash: expect.any(String) } });
  });

  it('gains nothing from the retention flag, and cannot skip or disable the triggers', async () => {
    await expect(
      broker.transaction().execute(async (trx) => {
        await sql`set local tessera.audit_retention = 'on'`.execute(trx);
        await sql`delete from audit_events where seq = 1`.execute(trx);
      }),
    ).rejects.toThrow(DENIED);
    await expect(sql`set session_replication_role = replica`.execute(broker)).rejects.toThrow(DENIED);
    await expect(sql`alter table audit_events disable trigger audit_events_append_only`.execute(broker)).rejects.toThrow(DENIED);
    // The owner bypasses grants, not the trigger: without the purge function's door it is refused too.
    await expect(sql`delete from audit_events where seq = 1`.execute(t.db)).rejects.toThrow(/DELETE on audit_events refused/);
    expect(await listAuditEvents(t.db, { limit: 10 })).toHaveLength(3);
  });

  it('purges only through the owner\'s function, and only the range its newest audit.purged event names', async () => {
    await expect(sql`select tessera_audit_purge(3)`.execute(broker)).rejects.toThrow(/not an audit.purged event/);
    // A forged purge event that claims more than it would delete is refused, and so is one not on top.
    const forged = await appendAuditEvent(broker, { actor: 'admin:mallory', action: 'audit.purged', outcome: 'success', data: { from_seq: '1', through_seq: '2', through_hash: '0'.repeat(64), count: 2 } }, NOW);
    await expect(sql`select tessera_audit_purge(${forged.seq}::bigint)`.execute(broker)).rejects.toThrow(/does not name the range/);
    await appendAuditEvent(broker, sampleEvent(4), NOW);
    await expect(sql`select tessera_audit_purge(${forged.seq}::bigint)`.execute(broker)).rejects.toThrow(/must be the newest/);

    const result = await purgeAuditEventsBefore(broker, new Date(NOW.getTime() + 1), 'admin:alice', NOW);
    expect(result).toMatchObject({ purged: 5, through: { seq: '5' }, event: { seq: '6' } });
    expect((await listAuditEvents(t.db, { limit: 10 })).map((e) => e.seq)).toEqual(['6']);
    expect(await verifyAuditChain(broker)).toMatchObject({ ok: true, count: 1 });
  });

  it('lets a staged event leave the outbox only into the chain, once, unchanged', async () => {
    await recordAudit(broker, [sampleEvent(10), sampleEvent(11)], NOW);
    await expect(sql`update audit_pending set outcome = 'deny'`.execute(broker)).rejects.toThrow(DENIED);
    // The one column it may name (for the sealer's row locks) is refused by the outbox trigger.
    await expect(sql`update audit_pending set id = id`.execute(broker)).rejects.toThrow(/cannot be updated/);
    await expect(sql`delete from audit_pending`.execute(broker)).rejects.toThrow(/leave only into the audit chain/);
    await expect(sql`truncate audit_pending`.execute(broker)).rejects.toThrow(DENIED);
    const [staged] = await broker.selectFrom('audit_pending').select('id').orderBy('id').limit(1).execute();
    // Sealing it with other content, or sealing it twice, fails as well.
    await expect(
      broker.transaction().execute(async (trx) => {
        await appendAuditEvent(trx, { ...sampleEvent(99), pending_id: staged!.id } as Parameters<typeof appendAuditEvent>[1], NOW);
        await sql`delete from audit_pending where id = ${staged!.id}`.execute(trx);
      }),
    ).rejects.toThrow(/leave only into the audit chain/);

    expect(await sealPendingAudit(broker, NOW)).toBe(2);
    expect(await broker.selectFrom('audit_pending').select('id').execute()).toEqual([]);
    await expect(appendAuditEvent(broker, { ...sampleEvent(10), pending_id: staged!.id } as Parameters<typeof appendAuditEvent>[1], NOW)).rejects.toThrow(/audit_events_pending/);
    const sealed = await listAuditEvents(broker, { targetType: 'grant', limit: 10 });
    expect(sealed.map((e) => e.target_id)).toEqual(['grant-10', 'grant-11']);
    expect(await verifyAuditChain(broker)).toMatchObject({ ok: true, count: 3 });
  });
});

describe('prepareDatabase', () => {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'warn' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });

  it('says append-only is enforced for the broker role, and advisory (with a warning) for a superuser', async () => {
    const t = await createTestDatabase();
    const asBroker = createDatabase({ url: t.url }).db;
    const asSuperuser = createDatabase({ url: withDatabase(inject('adminDatabaseUrl'), new URL(t.url).pathname.slice(1)) }).db;
    try {
      expect(await prepareDatabase({ db: asBroker, ownerUrl: t.ownerUrl, log })).toEqual({ applied: [], appendOnly: 'enforced' });
      expect(lines).toEqual([]);
      expect((await prepareDatabase({ db: asSuperuser, log })).appendOnly).toBe('advisory');
      expect(lines).toMatchObject([{ level: 40, msg: expect.stringMatching(/append-only is advisory/) }]);
    } finally {
      await asBroker.destroy();
      await asSuperuser.destroy();
      await t.drop();
    }
  });
});

describe('ensureOwnedDatabase', () => {
  it('hands a data dir from before the roles (every table the superuser\'s) to the owner, so the broker role is restricted', async () => {
    const adminUrl = inject('adminDatabaseUrl');
    const name = `a_${randomUUID().replace(/-/g, '')}`;
    const su = new pg.Client({ connectionString: adminUrl });
    await su.connect();
    const legacy = createDatabase({ url: withDatabase(adminUrl, name) }).db;
    let broker: Database | undefined;
    try {
      await su.query(`create database ${name}`);
      await migrateToLatest(legacy);
      await legacy.destroy();
      await ensureOwnedDatabase(su, name, (db) => new pg.Client({ connectionString: withDatabase(adminUrl, db) }));
      broker = createDatabase({ url: withDatabase(inject('brokerDatabaseUrl'), name) }).db;
      expect(await prepareDatabase({ db: broker, ownerUrl: withDatabase(inject('ownerDatabaseUrl'), name), log: pino({ level: 'silent' }) })).toEqual({ applied: [], appendOnly: 'enforced' });
      await expect(sql`delete from audit_events`.execute(broker)).rejects.toThrow(DENIED);
      expect((await sql<{ n: string }>`select count(*) as n from pg_class where relnamespace = 'public'::regnamespace and relowner <> ${OWNER_ROLE}::regrole`.execute(broker)).rows[0]!.n).toBe('0');
    } finally {
      await broker?.destroy();
      await su.query(`drop database if exists ${name} with (force)`);
      await su.end();
    }
  });
});

describe('npm run migrate with an owner and a broker URL', () => {
  const run = (env: Record<string, string>) =>
    new Promise<{ code: number; out: string }>((resolve) =>
      execFile(process.execPath, ['--import', 'tsx', 'src/db/migrate.cli.ts'], { env: { PATH: process.env.PATH, LOG_LEVEL: 'warn', TESSERA_KEK: randomBytes(32).toString('base64url'), ...env }, timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
      ),
    );

  it('migrates as the owner and grants the broker role; the broker role alone may not migrate', { timeout: 120_000 }, async () => {
    const name = `a_${randomUUID().replace(/-/g, '')}`;
    const su = new pg.Client({ connectionString: inject('adminDatabaseUrl') });
    await su.connect();
    try {
      await su.query(`create database ${name} owner ${OWNER_ROLE}`);
      const brokerUrl = withDatabase(inject('brokerDatabaseUrl'), name);
      const alone = await run({ DATABASE_URL: brokerUrl });
      expect(alone.code).toBe(1);
      expect(alone.out).toContain('the broker database role may not migrate: run `npm run migrate` with DATABASE_OWNER_URL');
      const migrated = await run({ DATABASE_URL: brokerUrl, DATABASE_OWNER_URL: withDatabase(inject('ownerDatabaseUrl'), name) });
      const newest = readdirSync(new URL('../../migrations/', import.meta.url)).filter((f) => f.endsWith('.ts')).sort().at(-1)!.replace(/\.ts$/, '');
      expect(migrated).toMatchObject({ code: 0, out: expect.stringMatching(new RegExp(`^applied: .*${newest}\naudit log append-only: enforced\n$`)) });
      // Now the broker role alone finds nothing to do, and still may not touch the log.
      expect(await run({ DATABASE_URL: brokerUrl })).toMatchObject({ code: 0, out: 'database is up to date\naudit log append-only: enforced\n' });
    } finally {
      await su.query(`drop database if exists ${name} with (force)`);
      await su.end();
    }
  });
});
