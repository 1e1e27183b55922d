import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { expireApprovals } from '../../src/approvals/expire-approvals.job.js';
import { approvalConfig, RunningClock, startApprovalWorld, type ApprovalWorld } from './support.js';

const BIN = path.resolve('bin/tessera.js');
let w: ApprovalWorld;
let dir: string;

function tessera(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args, '--broker', w.broker.url], { env: { PATH: process.env.PATH, ...env }, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}
const asExporter = (task: string, destination: string, waitTimeout: number) =>
  tessera(['token', '--task', task, '--param', `destination=${destination}`, '--client-id', 'exporter', '--assertion-key', path.join(dir, 'exporter.jwk.json'), '--wait-timeout', String(waitTimeout)]);

/** The pending approval the CLI just opened, once it shows up. */
async function pendingFor(destination: string, workload = 'exporter'): Promise<string> {
  // The CLI is a child process: under load it may take a while to start and ask.
  for (let i = 0; i < 250; i++) {
    const list = await w.admin(`/approvals?status=pending&workload=${workload}`);
    const found = (list.items as Array<{ id: string; params: { destination: string } }>).find((a) => a.params.destination === destination);
    if (found) return found.id;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no pending approval for ${destination}`);
}

beforeAll(async () => {
  w = await startApprovalWorld(approvalConfig, new RunningClock());
  dir = await mkdtemp(path.join(os.tmpdir(), 'tessera-approvals-'));
  await writeFile(path.join(dir, 'exporter.jwk.json'), JSON.stringify(w.exporter.privateJwk));
});
afterAll(async () => {
  await w.close();
  await rm(dir, { recursive: true, force: true });
});

describe('tessera token waits for a step-up; tessera approvals decides it', () => {
  it('waits with a progress line, then redeems and prints the single-use token', async () => {
    const running = asExporter('export-data', 's3://cli', 20);
    const id = await pendingFor('s3://cli');
    const listed = await tessera(['approvals', 'list', '--status', 'pending', '--admin-key', w.keys.bob]);
    expect(listed.stdout).toMatch(new RegExp(`${id}\\s+exporter\\s+export-data.*pending\\s+0/1`));
    const shown = await tessera(['approvals', 'show', id, '--admin-key', w.keys.bob]);
    expect(shown.stdout).toMatch(/reasons:\s+export-data needs an approver/);
    expect(shown.stdout).toMatch(/policies:\s+export-data-step-up/);
    const refused = await tessera(['approvals', 'approve', id, '--admin-key', w.keys.alice]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/403 The owner of workload exporter may not vote/);
    const approved = await tessera(['approvals', 'approve', id, '--comment', 'looks right', '--admin-key', w.keys.bob]);
    expect(approved.stdout).toBe(`approval ${id}: approved (1/1 approvals)\n`);

    const got = await running;
    expect(got.code).toBe(0);
    expect(got.stderr).toMatch(new RegExp(`waiting for approval ${id} \\(0/1 approvals, expires in 1[45]m \\d\\ds\\)`));
    expect(decodeJwt(got.stdout.trim())).toMatchObject({ sub: 'exporter', authorization_details: [{ params: { destination: 's3://cli' } }] });
  });

  it('exits 1 with the reason when denied', async () => {
    const running = asExporter('export-data', 's3://cli-denied', 20);
    const id = await pendingFor('s3://cli-denied');
    expect((await tessera(['approvals', 'deny', id, '--comment', 'no', '--admin-key', w.keys.carol])).code).toBe(0);
    const got = await running;
    expect(got.code).toBe(1);
    expect(got.stderr).toMatch(new RegExp(`approval ${id} was denied`));
    expect(got.stdout).toBe('');
  });

  it('exits 1 when the request expires while it waits', async () => {
    const running = asExporter('export-data', 's3://cli-expires', 25);
    const id = await pendingFor('s3://cli-expires');
    // The sweep runs at a time past the expiry; the broker's own clock stays with the CLI's, whose
    // assertions would otherwise look 15 minutes old.
    expect((await expireApprovals(w.broker.deps, new Date(w.broker.clock.now().getTime() + 900_000))).processed).toBeGreaterThanOrEqual(1);
    const got = await running;
    expect(got.code, got.stderr).toBe(1);
    expect(got.stderr).toMatch(new RegExp(`approval ${id} was expired`));
    expect(got.stdout).toBe('');
  });

  it('with a static identity token (a variable), explains that the redeem needs a fresh one', async () => {
    const running = tessera(['token', '--task', 'export-data', '--param', 'destination=s3://cli-static', '--wait-timeout', '25'], { TESSERA_IDENTITY_TOKEN: await w.ci.token() });
    const id = await pendingFor('s3://cli-static', 'pipeline');
    expect((await w.vote(w.keys.bob, id, 'approve')).body.status).toBe('approved');
    const got = await running;
    expect(got.code, got.stderr).toBe(1);
    expect(got.stderr).toMatch(new RegExp(`approval ${id} was approved, but redeeming it needs an identity token issued after the request`));
    expect(got.stderr).toContain(`POST ${w.broker.url}/v1/approvals/${id}/redeem`);
    expect(await w.admin(`/approvals/${id}`)).toMatchObject({ status: 'approved' });
  });

  it('exits 3 when nobody decides within --wait-timeout; --approval resumes that same request later', async () => {
    const got = await asExporter('export-data', 's3://cli-slow', 3);
    expect(got.code, got.stderr).toBe(3);
    const said = /gave up waiting for approval (\S+) after 3s; it is still pending; wait again with: tessera token --task export-data --param 'destination:="s3:\/\/cli-slow"' --approval (\S+)/.exec(got.stderr);
    expect(said, got.stderr).not.toBeNull();
    const id = said![1]!;
    expect(said![2]).toBe(id);

    const resumed = tessera(['token', '--task', 'export-data', '--param', 'destination:="s3://cli-slow"', '--approval', id, '--client-id', 'exporter', '--assertion-key', path.join(dir, 'exporter.jwk.json'), '--wait-timeout', '20']);
    await new Promise((r) => setTimeout(r, 500));
    expect((await w.vote(w.keys.bob, id, 'approve')).body.status).toBe('approved');
    const token = await resumed;
    expect(token.code, token.stderr).toBe(0);
    expect(decodeJwt(token.stdout.trim())).toMatchObject({ sub: 'exporter', authorization_details: [{ params: { destination: 's3://cli-slow' } }] });
    // No second request was opened for the approvers.
    const pending = (await w.admin('/approvals?workload=exporter')).items as Array<{ params: { destination: string } }>;
    expect(pending.filter((a) => a.params.destination === 's3://cli-slow')).toHaveLength(1);
    expect(await w.admin(`/approvals/${id}`)).toMatchObject({ status: 'redeemed' });
  });

  it('--approval refuses what is not an approval id, and another action than the approved one', async () => {
    const bad = await tessera(['token', '--task', 'export-data', '--approval', 'nope', '--client-id', 'exporter', '--assertion-key', path.join(dir, 'exporter.jwk.json')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--approval expects an approval id \(a UUID\), got "nope"/);
    const withTtl = await tessera(['token', '--task', 'export-data', '--approval', '01234567-89ab-cdef-0123-456789abcdef', '--ttl', '60', '--client-id', 'exporter', '--assertion-key', path.join(dir, 'exporter.jwk.json')]);
    expect(withTtl.code).toBe(2);
    expect(withTtl.stderr).toMatch(/--ttl and --purpose were fixed by the request that was approved/);

    expect((await asExporter('export-data', 's3://cli-resume', 2)).code).toBe(3);
    const id = await pendingFor('s3://cli-resume');
    expect((await w.vote(w.keys.bob, id, 'approve')).body.status).toBe('approved');
    const other = await tessera(['token', '--task', 'export-data', '--param', 'destination=s3://elsewhere', '--approval', id, '--client-id', 'exporter', '--assertion-key', path.join(dir, 'exporter.jwk.json'), '--wait-timeout', '5']);
    expect(other.code).toBe(1);
    expect(other.stdout).toBe('');
    expect(other.stderr).toMatch(/tessera token: 4\d\d /);
    // The approval still waits for the action it was given for.
    expect(await w.admin(`/approvals/${id}`)).toMatchObject({ status: 'approved' });
  });
});
