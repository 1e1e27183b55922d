import { readdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { configDocument, type ConfigDocument } from './spec.js';
import { fieldIssues } from '../lib/validation.js';
import { compilePolicySet, PolicyValidationError, type CompileOptions, type CompiledPolicySet, type PolicySetInput } from '../policy/index.js';

/** A configuration that failed validation; `problems` name the file and field of each. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`configuration is invalid:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

const SECTIONS = ['issuers', 'workloads', 'tasks', 'signal_types', 'signal_sources', 'calendars', 'settings'] as const;

/** The raw (not yet validated) sections of a configuration folder, each entry tagged with its file. */
export interface RawConfig {
  sections: Record<string, unknown>;
  files: string[];
}

/**
 * Reads every `*.yaml`, `*.yml` and `*.json` file of `dir` (not recursive, in name order). Each file
 * holds any of the top-level sections; list entries are concatenated, `settings` is one mapping.
 * Cedar policies are the `*.cedar` files of `dir` and of `dir/policies`.
 */
export async function readConfigFolder(dir: string): Promise<RawConfig> {
  const entries = (await readdir(dir)).filter((f) => /\.(ya?ml|json)$/.test(f)).sort();
  const sections: Record<string, unknown> & { [k: string]: unknown } = {};
  const problems: string[] = [];
  for (const file of entries) {
    const text = await readFile(path.join(dir, file), 'utf8');
    let doc: unknown;
    try {
      doc = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    } catch (err) {
      problems.push(`${file}: not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
      continue;
    }
    if (doc == null) continue;
    if (typeof doc !== 'object' || Array.isArray(doc)) {
      problems.push(`${file}: expected a mapping with sections (${SECTIONS.join(', ')})`);
      continue;
    }
    for (const [key, value] of Object.entries(doc)) {
      if (key === 'settings') {
        sections.settings = { ...(sections.settings as object | undefined), ...(value as object) };
        continue;
      }
      if (!Array.isArray(value)) {
        problems.push(`${file}: section "${key}" must be a list`);
        continue;
      }
      ((sections[key] ??= []) as unknown[]).push(...value);
    }
  }
  if (problems.length) throw new ConfigError(problems);
  const policies = await readPolicyFiles(dir);
  if (policies.length) sections.policies = policies;
  return { sections, files: [...entries, ...policies.map((p) => p.file)] };
}

async function readPolicyFiles(dir: string): Promise<Array<{ file: string; text: string }>> {
  const out: Array<{ file: string; text: string }> = [];
  for (const sub of ['.', 'policies']) {
    const folder = path.join(dir, sub);
    if (!existsSync(folder)) continue;
    for (const f of (await readdir(folder)).filter((n) => n.endsWith('.cedar')).sort()) {
      out.push({ file: path.posix.join(sub === '.' ? '' : sub, f), text: await readFile(path.join(folder, f), 'utf8') });
    }
  }
  return out;
}

/** Validates a configuration document strictly: unknown keys, bad values and duplicate names are errors. */
export function validateConfig(raw: unknown): ConfigDocument {
  const parsed = configDocument.safeParse(raw);
  if (!parsed.success) throw new ConfigError(fieldIssues(parsed.error).map((i) => `${i.field}: ${i.reason}`));
  const doc = parsed.data;
  const problems: string[] = [];
  const unique = (section: string, names: string[]) => {
    const seen = new Set<string>();
    for (const n of names) {
      if (seen.has(n)) problems.push(`${section}: "${n}" is defined twice`);
      seen.add(n);
    }
  };
  unique('issuers', doc.issuers.map((i) => i.id));
  unique('workloads', doc.workloads.map((w) => w.id));
  unique('tasks', doc.tasks.map((t) => t.name));
  unique('issuers (by issuer URL)', doc.issuers.flatMap((i) => (i.issuer ? [i.issuer] : [])));
  unique('issuers (by trust domain)', doc.issuers.flatMap((i) => (i.trust_domain ? [i.trust_domain] : [])));
  doc.tasks.forEach((t, ti) =>
    Object.entries(t.params).forEach(([name, p]) => {
      if (p.type !== 'string' || !p.pattern) return;
      try {
        new RegExp(p.pattern);
      } catch {
        problems.push(`tasks.${ti}.params.${name}.pattern: not a valid regular expression`);
      }
    }),
  );
  const issuerIds = new Set(doc.issuers.map((i) => i.id));
  doc.workloads.forEach((w, wi) =>
    w.bindings.forEach((b, bi) => {
      if (!issuerIds.has(b.issuer)) problems.push(`workloads.${wi}.bindings.${bi}.issuer: no issuer "${b.issuer}" is defined`);
      for (const [claim, cond] of Object.entries(b.claims)) {
        if (typeof cond === 'object') {
          try {
            new RegExp(cond.pattern);
          } catch {
            problems.push(`workloads.${wi}.bindings.${bi}.claims.${claim}.pattern: not a valid regular expression`);
          }
        }
      }
    }),
  );
  unique('signal_types', doc.signal_types.map((t) => t.name));
  unique('signal_sources', doc.signal_sources.map((s) => s.id));
  unique('calendars', doc.calendars.map((c) => c.name));
  const sourceIds = new Set(doc.signal_sources.map((s) => s.id));
  doc.signal_types.forEach((t, ti) =>
    t.sources.forEach((s) => {
      if (!sourceIds.has(s)) problems.push(`signal_types.${ti}.sources: no signal source "${s}" is defined`);
    }),
  );
  if (problems.length) throw new ConfigError(problems);
  if (doc.policies.length) {
    try {
      compileDocumentPolicies(doc);
    } catch (err) {
      if (err instanceof PolicyValidationError) throw new ConfigError(err.problems.map((p) => `policies: ${p}`));
      throw err;
    }
  }
  return doc;
}

/** What a document's policy set is compiled from: its tasks, signal types, calendars and policy files. */
export function documentPolicyInput(doc: Pick<ConfigDocument, 'tasks' | 'signal_types' | 'calendars' | 'policies'> & { settings?: Partial<ConfigDocument['settings']> }): PolicySetInput {
  return {
    tasks: doc.tasks,
    signalTypes: doc.signal_types,
    calendars: doc.calendars.map((c) => c.name),
    identityClaims: doc.settings?.identity_claims ?? [],
    policies: doc.policies,
  };
}

/** The policy set of a document, compiled (and validated against its tasks, signals and calendars). */
export function compileDocumentPolicies(doc: ConfigDocument, options: CompileOptions = {}): CompiledPolicySet {
  return compilePolicySet(documentPolicyInput(doc), options);
}

/** Reads and validates a configuration folder. */
export async function loadConfigFolder(dir: string): Promise<ConfigDocument> {
  const raw = await readConfigFolder(dir);
  return validateConfig(raw.sections);
}
