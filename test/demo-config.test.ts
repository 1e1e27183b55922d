import { describe, expect, it } from 'vitest';
import { loadConfigFolder, compileDocumentPolicies } from '../src/config/load-folder.js';
import { loadPolicyTestFolder, runPolicyTests } from '../src/policy/index.js';

describe('the demo configuration', () => {
  it('validates, compiles its policies, and passes its own policy tests', async () => {
    const doc = await loadConfigFolder('config/demo');
    expect(doc.tasks.map((t) => t.name)).toEqual(['hello-world', 'refund-payment', 'deploy-prod', 'export-customer-data']);
    const results = runPolicyTests(compileDocumentPolicies(doc), await loadPolicyTestFolder('config/demo/tests'));
    expect(results.filter((r) => !r.passed)).toEqual([]);
    expect(results.length).toBeGreaterThan(5);
  });
});
