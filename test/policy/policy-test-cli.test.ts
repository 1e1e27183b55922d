import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

const BIN = path.resolve('bin/tessera.js');
let dir: string;

function tessera(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH }, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tessera-policy-test-'));
  await cp('config/demo', path.join(dir, 'config'), { recursive: true });
  await mkdir(path.join(dir, 'failing'));
  await mkdir(path.join(dir, 'empty'));
  await writeFile(
    path.join(dir, 'failing', 'refund.yaml'),
    stringify([
      { name: 'a small refund is allowed', request: { workload: { id: 'agent-a', kind: 'agent' }, task: 'refund-payment', params: { order_id: 'o-1000', amount: 5 } }, expect: { outcome: 'allow' } },
      { name: 'a big refund is expected to pass (wrongly)', request: { workload: { id: 'agent-a', kind: 'agent' }, task: 'refund-payment', params: { order_id: 'o-1001', amount: 500 } }, expect: { outcome: 'allow' } },
    ]),
  );
});
afterAll(() => rm(dir, { recursive: true, force: true }));

// Each case starts the CLI through tsx: seconds apiece on a loaded machine.
describe('tessera policy test', { timeout: 90_000 }, () => {
  it('exits 0 when every case of the demo configuration passes', async () => {
    const r = await tessera(['policy', 'test', path.join(dir, 'config')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^policy version [0-9a-f]{12}: \d+ passed, 0 failed\n$/);
  });

  it('exits 1 and names the failing case, its file and the difference', async () => {
    const r = await tessera(['policy', 'test', path.join(dir, 'config'), '--cases', path.join(dir, 'failing')]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('FAIL refund.yaml: a big refund is expected to pass (wrongly)');
    expect(r.stdout).toContain('outcome: expected allow, got deny');
    expect(r.stdout).not.toContain('a small refund is allowed');
    expect(r.stdout).toMatch(/1 passed, 1 failed\n$/);
  });

  it('exits 1 with a message when there are no cases at all', async () => {
    const r = await tessera(['policy', 'test', path.join(dir, 'config'), '--cases', path.join(dir, 'empty')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`tessera policy test: no test cases in ${path.join(dir, 'empty')} (*.yaml files, each a list of cases)\n`);
  });
});
