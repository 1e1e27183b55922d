import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, TEST_ADMIN_KEY } from '../support/broker.js';
import { startApprovalWorld, type ApprovalWorld, type WorldParts } from './support.js';

const task = (name: string, approval?: Record<string, unknown>) => ({
  name,
  scopes: ['data:export'],
  audience: 'https://crm.example',
  params: { destination: { type: 'string' }, rows: { type: 'number', integer: true } },
  workloads: ['exporter'],
  ...(approval && { approval }),
});

/** Every export steps up; small ones are approved by policy, huge ones denied by policy, the rest wait for people. */
const POLICIES = `
@id("export-step-up") @step_up @reason("exports need an approver")
permit (principal is Workload, action == Action::"export-data", resource);

@id("small-export") @auto_approve @reason("fewer than 100 rows")
permit (principal, action == Action::"export-data", resource) when { context.params.rows < 100 };

@id("huge-export") @auto_approve @reason("more than a million rows is never automatic")
forbid (principal, action == Action::"export-data", resource) when { context.params.rows > 1000000 };

@id("wipe-two") @step_up @approvals("2")
permit (principal is Workload, action == Action::"wipe-db", resource);

@id("purge-two") @step_up @approvals("2")
permit (principal is Workload, action == Action::"purge", resource);

@id("lonely-approver") @auto_approve
permit (principal, action == Action::"read-only", resource);
`;

const config = ({ exporter }: WorldParts) => ({
  workloads: [{ id: 'exporter', kind: 'service', owner: 'alice', public_keys: [exporter.jwk] }],
  tasks: [task('export-data'), task('wipe-db'), task('purge', { required: 3 }), task('read-only')],
  policies: [{ file: 'approvals.cedar', text: POLICIES }],
});

let w: ApprovalWorld;
const ask = async (t: string, rows: number) => post(`${w.broker.url}/v1/grants`, { task: t, params: { destination: 's3://x', rows } }, { authorization: `Bearer ${await w.identity()}` });

beforeAll(async () => {
  w = await startApprovalWorld(config);
});
afterAll(() => w.close());

describe('a delegated approver policy (@auto_approve)', () => {
  it('approves what its permit covers, recorded as a vote by policy:<id>; the workload redeems it', async () => {
    const asked = await ask('export-data', 10);
    expect(asked).toMatchObject({ status: 202, body: { status: 'approved', approvals: 1, required_approvals: 1 } });
    const id = asked.body.approval_id as string;
    expect(await w.admin(`/approvals/${id}`)).toMatchObject({ votes: [{ approver: 'policy:small-export', person: 'policy:small-export', vote: 'approve', comment: 'fewer than 100 rows' }] });
    await w.broker.deps.audit.flush();
    const trail = await w.admin(`/audit/events?target_type=approval&target_id=${id}`);
    expect((trail.items as Array<{ actor: string; action: string }>).map((e) => `${e.actor} ${e.action}`)).toEqual([
      'workload:exporter approval.requested',
      'policy:small-export approval.voted',
      'policy:small-export approval.approved',
    ]);
    const redeemed = await w.redeem(id, { params: { destination: 's3://x', rows: 10 } });
    expect(redeemed.status).toBe(201);
  });

  it('denies what its forbid covers; leaves the rest to people', async () => {
    const huge = await ask('export-data', 5_000_000);
    expect(huge.body).toMatchObject({ status: 'denied' });
    expect(await w.admin(`/approvals/${huge.body.approval_id as string}`)).toMatchObject({ votes: [{ approver: 'policy:huge-export', vote: 'deny', comment: 'more than a million rows is never automatic' }] });
    const middle = await ask('export-data', 5_000);
    expect(middle.body).toMatchObject({ status: 'pending', approvals: 0 });
    expect((await w.vote(w.keys.bob, middle.body.approval_id as string, 'approve')).body.status).toBe('approved');
  });

  it('never allows a request by itself: an approver permit is not in the decision', async () => {
    const res = await ask('read-only', 1);
    expect(res).toMatchObject({ status: 403, body: { reasons: ['no policy permits this request'] } });
  });
});

describe('@approvals on the step-up permit', () => {
  it('raises N above the task setting, and never lowers it', async () => {
    const wipe = await ask('wipe-db', 1);
    expect(wipe.body).toMatchObject({ status: 'pending', required_approvals: 2 });
    const id = wipe.body.approval_id as string;
    expect((await w.vote(w.keys.bob, id, 'approve')).body).toMatchObject({ status: 'pending', approvals: 1 });
    expect((await w.vote(w.keys.carol, id, 'approve')).body).toMatchObject({ status: 'approved', approvals: 2 });
    expect((await ask('purge', 1)).body).toMatchObject({ required_approvals: 3 });
  });

  it('bad annotations are refused with the policy and the fix; nothing is applied', async () => {
    const admin = { authorization: `Bearer ${TEST_ADMIN_KEY}` };
    const put = (text: string) => fetch(`${w.broker.url}/v1/admin/policies/bad.cedar`, { method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ text }) }).then((r) => r.json() as Promise<{ errors: Array<{ reason: string }> }>);
    const cases: Array<[string, RegExp]> = [
      ['@id("b") @step_up @approvals("0") permit (principal, action == Action::"wipe-db", resource);', /@approvals must be a whole number from 1 to 10, got "0"/],
      ['@id("b") @approvals("2") permit (principal, action == Action::"wipe-db", resource);', /put it on a @step_up permit/],
      ['@id("b") @step_up @approvals("2") forbid (principal, action == Action::"wipe-db", resource);', /@approvals has no effect on a forbid/],
      ['@id("b") @auto_approve @step_up permit (principal, action == Action::"wipe-db", resource);', /@step_up has no effect on an @auto_approve policy/],
    ];
    for (const [text, message] of cases) {
      const res = await put(text);
      expect(res.errors.map((e) => e.reason).join('\n')).toMatch(message);
    }
    // The policies in force are unchanged.
    const whatIf = await post(`${w.broker.url}/v1/admin/decisions:evaluate`, { workload: 'exporter', task: 'wipe-db', params: { destination: 'x', rows: 1 } }, admin);
    expect(whatIf.body).toMatchObject({ outcome: 'step_up', determining: ['wipe-two'] });
    expect((await fetch(`${w.broker.url}/v1/admin/policies/bad.cedar`, { headers: admin })).status).toBe(404);
  });
});
