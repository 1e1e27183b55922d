import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAuditEvents } from '../../src/audit/audit.repository.js';
import { startTestBroker, post, TEST_ADMIN_KEY, type TestBroker } from '../support/broker.js';
import { startFakeIssuer, type FakeIssuer } from '../support/fake-issuer.js';
import { agentKey, testConfig } from '../support/fixtures.js';
import { sampleEvent, tamper, tessera as tesseraCli } from './support.js';

let broker: TestBroker;
let ci: FakeIssuer;
let dir: string;
const admin = { authorization: `Bearer ${TEST_ADMIN_KEY}` };
const tessera = (...args: string[]) => tesseraCli(broker.url, TEST_ADMIN_KEY, args);
const mint = async () => post(`${broker.url}/v1/grants`, { task: 'deploy-prod', params: { service: 'api' } }, { authorization: `Bearer ${await ci.token()}` });
const headOf = (stdout: string) => /^head: (\d+:[0-9a-f]{64})$/m.exec(stdout)?.[1];
/** Deletes the newest `n` events, as someone with the owner's rights could. */
const dropNewest = (n: number) => tamper(broker.database.db, sql`delete from audit_events where seq > (select max(seq) - ${n} from audit_events)`);

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tessera-audit-cli-'));
  ci = await startFakeIssuer({ now: () => broker.clock.now() });
  // No scheduler: these tests count and drop the newest events, and a job firing on the wall clock
  // (rotate-keys publishes its first next key at second 0) would add one in between.
  broker = await startTestBroker(testConfig(ci, (await agentKey()).jwk), { scheduler: false });
  for (let i = 0; i < 3; i++) expect((await mint()).status).toBe(201);
});
afterAll(async () => {
  await broker.stop();
  await ci.close();
  await rm(dir, { recursive: true, force: true });
});

describe('tessera audit verify', { timeout: 120_000 }, () => {
  it('prints the head; given it later, catches the newest events deleted, which alone verify cannot see', async () => {
    const first = await tessera('audit', 'verify');
    expect(first.code).toBe(0);
    const head = headOf(first.stdout)!;
    expect(head).toBeDefined();
    expect((await tessera('audit', 'verify', '--expect-head', head)).stdout).toContain(`reaches the expected head ${head}`);

    await dropNewest(2);
    expect((await tessera('audit', 'verify')).code).toBe(0);
    const caught = await tessera('audit', 'verify', '--expect-head', head);
    expect(caught.code).toBe(1);
    expect(caught.stdout).toContain(`BROKEN at seq ${Number(head.split(':')[0]) - 1} (truncated)`);
    expect((await tessera('audit', 'verify', '--expect-head', 'nonsense')).code).toBe(2);
  });

  it('--checkpoint keeps the head in a file, moves it on success, and refuses a rewritten tail', async () => {
    const file = path.join(dir, 'audit-head');
    const first = await tessera('audit', 'verify', '--checkpoint', file);
    expect(first.code).toBe(0);
    expect((await readFile(file, 'utf8')).trim()).toBe(headOf(first.stdout));
    await mint();
    const second = await tessera('audit', 'verify', '--checkpoint', file);
    expect(second.stdout).toContain(`reaches the expected head ${headOf(first.stdout)}`);
    const kept = headOf(second.stdout)!;
    expect((await readFile(file, 'utf8')).trim()).toBe(kept);

    // The newest events replaced by new ones: a valid chain again, but not the one the file saw.
    await dropNewest(2);
    await mint();
    const rewritten = await tessera('audit', 'verify', '--checkpoint', file);
    expect(rewritten.code).toBe(1);
    expect(rewritten.stdout).toContain(`BROKEN at seq ${kept.split(':')[0]} (checkpoint_mismatch)`);
    expect((await readFile(file, 'utf8')).trim()).toBe(kept);
  });

  it('streams progress on a long chain, on stderr, while stdout keeps the verdict', async () => {
    await appendAuditEvents(broker.database.db, Array.from({ length: 2_500 }, (_, i) => sampleEvent(i)), broker.clock.now());
    const long = await tessera('audit', 'verify');
    expect(long.code).toBe(0);
    expect(long.stderr).toMatch(/\rverified 1000 of \d+ events\rverified 2000 of \d+ events/);
    expect(long.stdout).toMatch(/^audit chain intact: \d{4} events verified\nhead: \d+:[0-9a-f]{64}\n$/);
    // The same stream over the API: progress lines, then the result.
    const res = await fetch(`${broker.url}/v1/admin/audit/verify`, { headers: { ...admin, accept: 'application/x-ndjson' } });
    const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.slice(0, 2)).toMatchObject([{ progress: { checked: 1000 } }, { progress: { checked: 2000 } }]);
    expect(lines.at(-1)).toMatchObject({ result: { ok: true } });
  });
});

describe('tessera audit export', { timeout: 120_000 }, () => {
  it('prints the last seq exported, and --after-seq resumes right after it', async () => {
    const all = await tessera('audit', 'export');
    const last = /last seq (\d+) \(resume with --after-seq \1\)/.exec(all.stderr)?.[1];
    const lines = all.stdout.trim().split('\n').map((l) => JSON.parse(l) as { seq: string; hash: string; prev_hash: string });
    expect(last).toBe(lines.at(-1)!.seq);
    await mint();
    const resumed = await tessera('audit', 'export', '--after-seq', last!);
    const more = resumed.stdout.trim().split('\n').map((l) => JSON.parse(l) as { seq: string; prev_hash: string; action: string });
    expect(more[0]).toMatchObject({ seq: String(Number(last) + 1), prev_hash: lines.at(-1)!.hash });
    expect(more.map((e) => e.action)).toEqual(['decision.recorded', 'grant.minted']);
    expect(resumed.stderr).toContain(`last seq ${more.at(-1)!.seq}`);
  });
});

describe('tessera audit purge', { timeout: 120_000 }, () => {
  it('needs --before and the admin role', async () => {
    expect((await tessera('audit', 'purge')).code).toBe(2);
    const viewer = (await post(`${broker.url}/v1/admin/keys`, { name: 'auditor', role: 'viewer' }, admin)).body.key as string;
    const refused = await tesseraCli(broker.url, viewer, ['audit', 'purge', '--before', broker.clock.now().toISOString()]);
    expect(refused).toMatchObject({ code: 1, stderr: expect.stringContaining('403') });
    const future = new Date(broker.clock.now().getTime() + 60_000).toISOString();
    expect((await tessera('audit', 'purge', '--before', future)).stderr).toContain('must not be in the future');
  });

  it('purges what is older, records itself on the chain, and verify still passes from the new anchor', async () => {
    const before = await tessera('audit', 'verify');
    const oldHead = headOf(before.stdout)!;
    broker.clock.advance(1);
    await mint();
    const cutoff = new Date(broker.clock.now().getTime() - 500).toISOString();
    const purged = await tessera('audit', 'purge', '--before', cutoff);
    expect(purged.code).toBe(0);
    const m = /^purged (\d+) events through seq (\d+); recorded as audit.purged at seq (\d+)\n$/.exec(purged.stdout)!;
    expect(m).not.toBeNull();
    expect(Number(m[1])).toBeGreaterThan(2_500);
    const events = (await (await fetch(`${broker.url}/v1/admin/audit/events?limit=10`, { headers: admin })).json()) as { items: Array<Record<string, any>> }; // eslint-disable-line @typescript-eslint/no-explicit-any
    // Only the events minted after the cutoff remain, then the purge's own event.
    expect(events.items.map((e) => e.action)).toEqual(['decision.recorded', 'grant.minted', 'audit.purged']);
    expect(events.items[2]).toMatchObject({ seq: m[3], actor: 'admin:bootstrap', request_id: expect.any(String), data: { before: cutoff, count: Number(m[1]), through_seq: m[2] } });

    const after = await tessera('audit', 'verify', '--expect-head', oldHead);
    expect(after.code).toBe(0);
    expect(after.stdout).toMatch(new RegExp(`^audit chain intact: 3 events verified; reaches the expected head ${oldHead}`));
  });

  it('runs through the API as well, and a second purge carries on from the new anchor', async () => {
    broker.clock.advance(1);
    const res = await post(`${broker.url}/v1/admin/audit/purge`, { before: broker.clock.now().toISOString() }, admin);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ purged: 3, events: [expect.stringMatching(/^\d+$/)] });
    const verified = await fetch(`${broker.url}/v1/admin/audit/verify`, { headers: admin });
    expect(await verified.json()).toMatchObject({ ok: true, count: 1, head: { seq: res.body.events[0] } });
  });
});
