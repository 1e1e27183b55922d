import { describe, expect, it } from 'vitest';
import { configDocument, taskSpec } from '../../src/config/spec.js';

const task = (extra: Record<string, unknown>) => ({ name: 'transfer', scopes: ['t'], audience: 'https://t.example', workloads: ['w'], params: { account: { type: 'string' } }, ...extra });
const issues = (r: { success: boolean; error?: { issues: Array<{ path: PropertyKey[]; message: string }> } }) =>
  r.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];

describe('configuration specs', () => {
  it('a task target names only its own params', () => {
    expect(taskSpec.safeParse(task({ target: ['account'] })).success).toBe(true);
    expect(issues(taskSpec.safeParse(task({ target: ['account', 'amount'] })))).toEqual(['target.1: "amount" is not a parameter of this task']);
    expect(taskSpec.safeParse(task({ target: [] })).success).toBe(false);
  });

  it('settings.identity_claims takes claim names, and defaults to none', () => {
    expect(configDocument.parse({}).settings.identity_claims).toEqual([]);
    expect(configDocument.parse({ settings: { identity_claims: ['project_path', 'ref_protected'] } }).settings.identity_claims).toEqual(['project_path', 'ref_protected']);
    expect(issues(configDocument.safeParse({ settings: { identity_claims: ['1bad', 'ok'] } }))).toEqual([
      'settings.identity_claims.0: a claim name: letters, digits and _, not starting with a digit, at most 64',
    ]);
  });
});
