import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPolicyTestFolder, PolicyTestFileError, runPolicyTests } from '../../src/policy/policy-test.js';
import type { PolicyTestCaseInput } from '../../src/policy/policy-test.spec.js';
import { compileWith, FIXTURES } from './support.js';

const compiled = compileWith();

const refund = (amount: number, expect: PolicyTestCaseInput['expect']): PolicyTestCaseInput => ({
  name: `refund ${amount}`,
  request: { workload: { id: 'agent-1', kind: 'agent' }, task: 'refund-payment', params: { order_id: 'o-1', amount } },
  expect,
});

describe('runPolicyTests', () => {
  it('passes every example case', async () => {
    const cases = await loadPolicyTestFolder(path.join(FIXTURES, 'tests'));
    expect(cases.length).toBeGreaterThanOrEqual(10);
    const results = runPolicyTests(compiled, cases);
    expect(results.filter((r) => !r.passed).map((r) => `${r.file} ${r.name}: ${r.failures.join('; ')}`)).toEqual([]);
    expect(results[0]!.file).toBe('deploy-prod.yaml');
  });

  it('fails a case with a readable diff of what differed', () => {
    const [wrongOutcome, wrongTtl, missingReason, ok] = runPolicyTests(compiled, [
      refund(150, { outcome: 'allow' }),
      refund(10, { outcome: 'allow', max_ttl_seconds: 300 }),
      refund(10, { outcome: 'allow', reasons_include: ['approved by finance'] }),
      refund(10, { outcome: 'allow', max_ttl_seconds: 120, reasons_include: ['up to 100'] }),
    ]);
    expect(wrongOutcome!.passed).toBe(false);
    expect(wrongOutcome!.failures).toEqual([
      'outcome: expected allow, got deny (reasons ["no policy permits this request"], determined by [])',
    ]);
    expect(wrongTtl!.failures).toEqual(['max_ttl_seconds: expected 300, got 120']);
    expect(missingReason!.failures).toEqual([
      'reasons: expected one to include "approved by finance", got ["agents refund up to 100 per request"]',
    ]);
    expect(ok!.passed).toBe(true);
  });

  it('asserts the absence of a TTL cap with null', () => {
    const deny = runPolicyTests(compiled, [refund(150, { outcome: 'deny', max_ttl_seconds: null })]);
    expect(deny[0]!.passed).toBe(true);
    const capped = runPolicyTests(compiled, [refund(5, { outcome: 'allow', max_ttl_seconds: null })]);
    expect(capped[0]!.failures).toEqual(['max_ttl_seconds: expected no cap, got 120']);
  });

  it('refuses a malformed case, naming it', () => {
    const bad = { ...refund(1, { outcome: 'allow' }), expect: { outcome: 'maybe' } } as unknown as PolicyTestCaseInput;
    expect(() => runPolicyTests(compiled, [bad])).toThrow(/cases\[0\]\.expect\.outcome/);
  });
});

describe('loadPolicyTestFolder', () => {
  const dirs: string[] = [];
  afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  it('names the file and field of every problem', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tessera-policy-tests-'));
    dirs.push(dir);
    await writeFile(path.join(dir, 'a.yaml'), '- name: x\n  request: { workload: { id: w, kind: ci }, task: deploy-prod, extra: 1 }\n  expect: { outcome: allow }\n');
    await writeFile(path.join(dir, 'b.yml'), 'name: not a list\n');
    await writeFile(path.join(dir, 'notes.txt'), 'ignored');
    const err = await loadPolicyTestFolder(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PolicyTestFileError);
    expect((err as PolicyTestFileError).problems).toEqual([
      expect.stringMatching(/^a\.yaml\[0\]\.request: .*extra/),
      'b.yml: expected a list of test cases',
    ]);
  });
});
