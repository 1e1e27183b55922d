import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, TEST_ADMIN_KEY } from '../support/broker.js';
import { startApprovalWorld, type ApprovalWorld } from './support.js';

let w: ApprovalWorld;
const admin = { authorization: `Bearer ${TEST_ADMIN_KEY}` };
/** An approver key held by `person`. */
const approverKey = async (name: string, person?: string) => {
  const res = await post(`${w.broker.url}/v1/admin/keys`, { name, role: 'approver', ...(person && { person }) }, admin);
  expect(res.status).toBe(201);
  return res.body.key as string;
};
const ask = async (task: string, destination: string) => {
  const res = await w.ask(task, destination);
  expect(res.status).toBe(202);
  return res.body.approval_id as string;
};

beforeAll(async () => {
  w = await startApprovalWorld();
});
afterAll(() => w.close());

describe('self-approval is about people, not keys', () => {
  it('a key holds a person (default its name); the owner is matched whatever the case', async () => {
    const listed = await fetch(`${w.broker.url}/v1/admin/keys`, { headers: admin }).then((r) => r.json() as Promise<{ items: Array<{ name: string; person: string }> }>);
    expect(listed.items.find((k) => k.name === 'bob')).toMatchObject({ person: 'bob' });
    const aliceAgain = await approverKey('alice-laptop', 'ALICE ');
    const id = await ask('export-data', 's3://case');
    expect(await w.vote(aliceAgain, id, 'approve')).toMatchObject({ status: 403, body: { code: 'self_approval_forbidden', detail: 'The owner of workload exporter may not vote on its requests.' } });
    expect((await w.vote(w.keys.bob, id, 'approve')).body).toMatchObject({ status: 'approved', votes: [{ approver: 'admin:bob', person: 'bob' }] });
  });

  it('one person with two keys counts once toward N', async () => {
    const bobsOther = await approverKey('bob-laptop', 'Bob');
    const id = await ask('wipe-db', 'db://people');
    expect((await w.vote(w.keys.bob, id, 'approve')).body).toMatchObject({ status: 'pending', approvals: 1 });
    expect(await w.vote(bobsOther, id, 'approve')).toMatchObject({ status: 409, body: { detail: 'bob has already voted on this approval.' } });
    expect((await w.vote(w.keys.carol, id, 'approve')).body).toMatchObject({ status: 'approved', approvals: 2 });
  });

  it('the database refuses a second vote of one person even past the service', async () => {
    const id = await ask('wipe-db', 'db://constraint');
    await w.vote(w.keys.bob, id, 'approve');
    const db = w.broker.database.db;
    const insert = db.insertInto('approval_votes').values({ approval_id: id, approver: 'admin:bob-laptop', person: 'bob', vote: 'approve', comment: null, at: new Date() }).execute();
    await expect(insert).rejects.toThrow(/approval_votes_one_per_person/);
  });
});

describe("the workload's sponsor", () => {
  it('is refused where the task forbids it (by default), allowed where the task forbids only the owner', async () => {
    const dave = await approverKey('dave', 'dave@example.com');
    const id = await ask('export-data', 's3://sponsor');
    expect(await w.admin(`/approvals/${id}`)).toMatchObject({ workload_sponsor: 'Dave@Example.com', forbid: ['owner', 'sponsor'] });
    expect(await w.vote(dave, id, 'approve')).toMatchObject({ status: 403, body: { code: 'self_approval_forbidden', detail: 'The sponsor of workload exporter may not vote on its requests.' } });

    const audit = await ask('read-audit', 's3://sponsor');
    expect(await w.admin(`/approvals/${audit}`)).toMatchObject({ forbid: ['owner'] });
    expect((await w.vote(dave, audit, 'approve')).body.status).toBe('approved');
    // forbid_owner: false, the earlier spelling, still refuses the sponsor.
    const rotate = await ask('rotate-key', 'kms://sponsor');
    expect(await w.admin(`/approvals/${rotate}`)).toMatchObject({ forbid: ['sponsor'] });
    expect((await w.vote(w.keys.alice, rotate, 'approve')).body.status).toBe('approved');
  });

  it('is set through the admin API; requests made after the change carry the new sponsor', async () => {
    const current = (await w.admin('/workloads/exporter')).spec as Record<string, unknown>;
    const put = await fetch(`${w.broker.url}/v1/admin/workloads/exporter`, {
      method: 'PUT',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({ ...current, sponsor: 'erin' }),
    });
    expect(put.status).toBe(200);
    expect(((await put.json()) as { spec: { sponsor: string } }).spec.sponsor).toBe('erin');
    const erin = await approverKey('erin');
    const id = await ask('export-data', 's3://erin');
    expect((await w.vote(erin, id, 'approve')).status).toBe(403);
    const bad = await fetch(`${w.broker.url}/v1/admin/workloads/exporter`, { method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ ...current, sponsor: '' }) });
    expect(((await bad.json()) as { errors: Array<{ field: string }> }).errors[0]!.field).toBe('sponsor');
  });

  it('a task naming both forbid and forbid_owner is refused with the field named', async () => {
    const res = await fetch(`${w.broker.url}/v1/admin/tasks/both`, {
      method: 'PUT',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({ scopes: ['x'], audience: 'https://x.example', workloads: ['exporter'], approval: { forbid: ['owner'], forbid_owner: true } }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: Array<{ field: string }> }).errors).toEqual([{ field: 'approval.forbid_owner', reason: expect.stringMatching(/not both/) }]);
  });
});
