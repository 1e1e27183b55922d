import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { taskSpec } from '../../src/config/spec.js';
import { compilePolicySet, type CompileOptions, type CompiledPolicySet, type PolicySetInput } from '../../src/policy/policy-set.js';
import { signalTypeSpec } from '../../src/policy/signal-type.spec.js';
import type { PolicyFile } from '../../src/policy/policy-source.js';

export const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

/** The example tasks, signal types and calendars, parsed as the broker would. */
export function fixtureRegistry(): Omit<PolicySetInput, 'policies'> {
  const doc = parseYaml(readFileSync(path.join(FIXTURES, 'registry.yaml'), 'utf8')) as Record<string, unknown[]>;
  return {
    tasks: doc.tasks!.map((t) => taskSpec.parse(t)),
    signalTypes: doc.signal_types!.map((s) => signalTypeSpec.parse(s)),
    calendars: doc.calendars as string[],
  };
}

/** The example `.cedar` files. */
export function fixturePolicies(): PolicyFile[] {
  const dir = path.join(FIXTURES, 'policies');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.cedar'))
    .sort()
    .map((file) => ({ file, text: readFileSync(path.join(dir, file), 'utf8') }));
}

/** The example registry compiled with the given policies (the example ones by default). */
export function compileWith(policies: PolicyFile[] = fixturePolicies(), options: CompileOptions = {}): CompiledPolicySet {
  return compilePolicySet({ ...fixtureRegistry(), policies }, options);
}
