import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfigFolder, compileDocumentPolicies } from '../src/config/load-folder.js';
import { loadPolicyTestFolder, runPolicyTests } from '../src/policy/index.js';

/** Loads a shipped configuration folder and runs its own policy tests; returns the document. */
async function validateShippedFolder(dir: string) {
  const doc = await loadConfigFolder(dir);
  const results = runPolicyTests(compileDocumentPolicies(doc), await loadPolicyTestFolder(path.join(dir, 'tests')));
  expect(results.filter((r) => !r.passed)).toEqual([]);
  return { doc, tests: results.length };
}

describe('the demo configuration', () => {
  it('validates, compiles its policies, and passes its own policy tests', async () => {
    const { doc, tests } = await validateShippedFolder('config/demo');
    expect(doc.tasks.map((t) => t.name)).toEqual(['hello-world', 'refund-payment', 'deploy-prod', 'export-customer-data']);
    expect(tests).toBeGreaterThan(5);
  });
});

describe('the example configuration docker-compose.yml starts with', () => {
  it('is the example folder, which validates, passes its policy tests, and holds no private key', async () => {
    const compose = parse(await readFile('docker-compose.yml', 'utf8')) as { services: { broker: { environment: Record<string, string> } } };
    const dir = compose.services.broker.environment.TESSERA_CONFIG_DIR!.replace(/^\/app\//, '');
    expect(dir).toBe('config/example');
    const { doc, tests } = await validateShippedFolder(dir);
    expect(doc.issuers.length).toBeGreaterThan(0);
    expect(doc.workloads.length).toBeGreaterThan(0);
    expect(doc.tasks.length).toBeGreaterThan(0);
    expect(tests).toBeGreaterThan(0);
    // The schema refuses private JWK members; this also catches a key file dropped beside the config.
    const files = await readdir(dir, { recursive: true });
    for (const f of files) {
      const text = await readFile(path.join(dir, f), 'utf8').catch(() => '');
      expect(text, f).not.toMatch(/"d"\s*:|PRIVATE KEY/);
    }
  });
});
