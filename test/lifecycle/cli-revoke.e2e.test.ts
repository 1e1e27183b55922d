import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dispatch } from '../../src/cli/command.js';
import { grantsCommands } from '../../src/cli/commands/grants.js';
import { TEST_ADMIN_KEY } from '../support/broker.js';
import { startLifecycleBroker, type Lifecycle } from './support.js';

let t: Lifecycle;
beforeAll(async () => {
  t = await startLifecycleBroker();
});
afterAll(async () => t.close());

/** Runs `tessera grants …` in this process against the test broker, with what it printed. */
async function tessera(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = { stdout: '', stderr: '' };
  const writes = { stdout: process.stdout.write, stderr: process.stderr.write };
  process.stdout.write = ((chunk: string) => ((out.stdout += chunk), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => ((out.stderr += chunk), true)) as typeof process.stderr.write;
  try {
    const code = await dispatch('', 'tessera', [grantsCommands], ['grants', ...args, '--broker', t.broker.url, '--admin-key', TEST_ADMIN_KEY]);
    return { code, ...out };
  } finally {
    process.stdout.write = writes.stdout;
    process.stderr.write = writes.stderr;
  }
}

describe('tessera grants revoke', () => {
  it('revokes a grant with a reason; again changes nothing; the reason is required', async () => {
    const g = await t.mintDeploy();
    const first = await tessera('revoke', g.id, '--reason', 'leaked in a log');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/status: +revoked\n[\s\S]*changed: +yes\n[\s\S]*revoked: +[0-9a-f-]{36}\n/);
    expect(await t.grant(g.id)).toMatchObject({ status: 'revoked', ended_by: 'admin:bootstrap', end_reason: 'leaked in a log' });
    expect((await tessera('revoke', g.id, '--reason', 'again')).stdout).toMatch(/changed: +no \(it had already ended\)\n[\s\S]*revoked: +\(none\)/);
    expect(await t.eventsFor(g.id)).toBe(1);
    const noReason = await tessera('revoke', g.id);
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toContain('--reason is required');
    expect((await tessera('revoke', '00000000-0000-4000-8000-000000000000', '--reason', 'x')).stderr).toMatch(/404 Grant was not found/);
  });
});
