import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { exportJWK, exportPKCS8, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/lib/hash.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { scanDatabase, scanLogs, secretShapes } from '../support/secret-scan.js';

// What the suite-wide teardown relies on: it must catch what it is for, and pass what is public.
let jwt: string;
let privatePem: string;
let publicPem: string;
let publicJwk: string;
beforeAll(async () => {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  jwt = await new SignJWT({ sub: 'deploy-bot' }).setProtectedHeader({ alg: 'ES256' }).sign(privateKey);
  privatePem = await exportPKCS8(privateKey);
  publicPem = await exportSPKI(publicKey);
  publicJwk = JSON.stringify(await exportJWK(publicKey));
});

describe('secret shapes', () => {
  it('catches a JWT, a private PEM block and a broker-made secret anywhere in a text', () => {
    expect(secretShapes(`{"error":"Bearer ${jwt}"}`)).toEqual(['jwt']);
    expect(secretShapes(JSON.stringify({ key: privatePem }))).toEqual(['pem']);
    expect(secretShapes(`key=tsk_${'A'.repeat(43)} and whsec_${'b'.repeat(43)}`)).toEqual(['broker_secret']);
  });

  it('passes public keys, hashes, sealed keys and base64 that merely contains eyJ', () => {
    expect(secretShapes(publicPem)).toEqual([]);
    expect(secretShapes(publicJwk)).toEqual([]);
    expect(secretShapes(sha256Hex(jwt))).toEqual([]);
    expect(secretShapes('v1.eyJmYWtlX2l2.eyJjaXBoZXJ0ZXh0.dGFn')).toEqual([]);
    expect(secretShapes('tsk_not-a-key tsk_')).toEqual([]);
  });
});

describe('scanning a database and logs', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());

  it('names the table, column and row of a secret, and skips the published status list token', async () => {
    const { id } = await t.db
      .insertInto('signals')
      .values({ type: 'ticket', subject: 'w1', value: JSON.stringify(jwt), source: 'x', observed_at: new Date(), received_at: new Date() })
      .returning('id')
      .executeTakeFirstOrThrow();
    await t.db.insertInto('status_lists').values({ id: 1, token: jwt, issued_at: new Date(), expires_at: new Date() }).execute();
    try {
      expect(await scanDatabase(t.db, 'db1')).toEqual([{ where: `db1 signals.value row ${id}`, rule: 'jwt' }]);
    } finally {
      // Cleaned before drop: drop() scans too, and this planted row must not fail the whole run.
      await sql`delete from signals; delete from status_lists`.execute(t.db);
    }
    expect(await scanDatabase(t.db, 'db1')).toEqual([]);
  });

  it('names the log file and line', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tessera-scan-'));
    try {
      await writeFile(path.join(dir, 'broker-1.ndjson'), `{"msg":"request"}\n{"msg":"oops","token":"${jwt}"}\n`);
      expect(await scanLogs(dir)).toEqual([{ where: 'log broker-1.ndjson:2', rule: 'jwt' }]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
