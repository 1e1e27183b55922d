import { execFile } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestDeployGrant, startAdminWorld, TEST_ADMIN_KEY, type AdminWorld } from './support.js';

const BIN = path.resolve('bin/tessera.js');
let world: AdminWorld;
let env: Record<string, string>;

function tessera(args: string[], extraEnv: Record<string, string> = env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, ...extraEnv }, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  world = await startAdminWorld();
  env = { TESSERA_URL: world.broker.url, TESSERA_ADMIN_KEY: TEST_ADMIN_KEY };
});
afterAll(() => world.stop());

describe('tessera admin commands', () => {
  it('prints --help for every command and group', async () => {
    for (const cmd of ['grants list', 'grants show', 'workloads list', 'workloads show', 'workloads suspend', 'workloads activate', 'admin keys create', 'admin keys list', 'admin keys revoke']) {
      const r = await tessera([...cmd.split(' '), '--help']);
      expect({ cmd, code: r.code }).toEqual({ cmd, code: 0 });
      expect(r.stdout).toMatch(new RegExp(`^Usage: tessera ${cmd}`));
    }
    expect((await tessera(['workloads', '--help'])).stdout).toMatch(/Commands:\n {2}list +list workloads\n {2}show/);
    expect((await tessera(['admin', 'keys', '--help'])).stdout).toMatch(/ {2}create +create an admin API key/);
    expect((await tessera(['--help'])).stdout).toMatch(/ {2}grants +list and show grants/);
    const unknown = await tessera(['workloads', 'explode']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^tessera workloads: unknown command "explode"/);
  });

  it('workloads: list as a table or JSON, show, suspend with a reason (revoking grants), activate', async () => {
    const grant = await requestDeployGrant(world);
    const table = await tessera(['workloads', 'list', '--kind', 'ci']);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID +KIND +OWNER +STATUS +REASON$/);
    expect(table.stdout).toMatch(/\napi-deploy +ci +api-team +active +-\n/);
    const json = await tessera(['workloads', 'list', '--json', '--limit', '1']);
    expect(JSON.parse(json.stdout)).toMatchObject({ items: [{ id: 'agent-1' }], next_cursor: expect.any(String) });

    expect((await tessera(['workloads', 'show', 'api-deploy'])).stdout).toMatch(/^id: +api-deploy\n[\s\S]*spec:\n {2}\{/);

    const noReason = await tessera(['workloads', 'suspend', 'api-deploy']);
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toMatch(/--reason is required/);
    const suspended = await tessera(['workloads', 'suspend', 'api-deploy', '--reason', 'incident 7']);
    expect(suspended.code).toBe(0);
    expect(suspended.stdout).toMatch(/status: +suspended\n[\s\S]*grants revoked: +1/);
    expect((await tessera(['grants', 'show', grant.body.grant_id!])).stdout).toMatch(/status: +revoked\n[\s\S]*end reason: +incident 7/);

    const again = await tessera(['workloads', 'suspend', 'api-deploy', '--reason', 'twice']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/409 The workload is suspended/);
    expect((await tessera(['workloads', 'activate', 'api-deploy', '--reason', 'resolved', '--json'])).stdout).toContain('"status": "active"');
  });

  it('grants list with filters; a bad filter is explained', async () => {
    await requestDeployGrant(world);
    const r = await tessera(['grants', 'list', '--workload', 'api-deploy', '--status', 'active']);
    expect(r.stdout.split('\n')[0]).toMatch(/^ID +WORKLOAD +TASK +STATUS +ISSUED +EXPIRES +ENDED BY$/);
    expect(r.stdout.trim().split('\n'), r.stdout).toHaveLength(2);
    const bad = await tessera(['grants', 'list', '--status', 'paused']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/400 The query is invalid\.\n {2}status: /);
  });

  it('admin keys: create prints the key once, list never, revoke stops it; no key is a usage error', async () => {
    const created = await tessera(['admin', 'keys', 'create', '--name', 'robot', '--role', 'viewer', '--person', 'ops@example.com', '--expires-in-days', '7']);
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^person: +ops@example\.com$/m);
    expect(created.stderr).toMatch(/not shown again/);
    const key = /^key: +(tsk_\S+)$/m.exec(created.stdout)![1]!;
    const id = /^id: +(\S+)$/m.exec(created.stdout)![1]!;

    const asRobot = await tessera(['workloads', 'list', '--admin-key', key]);
    expect(asRobot.code).toBe(0);
    const forbidden = await tessera(['admin', 'keys', 'list', '--admin-key', key]);
    expect(forbidden.stderr).toMatch(/403 This action needs the admin role/);

    const list = await tessera(['admin', 'keys', 'list']);
    expect(list.stdout).toMatch(/\n\S+ +robot +ops@example\.com +viewer +active/);
    expect(list.stdout).not.toContain(key);

    expect((await tessera(['admin', 'keys', 'revoke', id, '--reason', 'done'])).stdout).toMatch(/status: +revoked/);
    expect((await tessera(['workloads', 'list', '--admin-key', key])).stderr).toMatch(/401/);
    const noKey = await tessera(['admin', 'keys', 'list'], { TESSERA_URL: world.broker.url, TESSERA_DATA_DIR: '/nonexistent' });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/no admin key/);
  });
});
