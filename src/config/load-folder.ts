import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { configDocument, type ConfigDocument } from './spec.js';
import { fieldIssues } from '../lib/validation.js';

/** A configuration that failed validation; `problems` name the file and field of each. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`configuration is invalid:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

const SECTIONS = ['issuers', 'workloads', 'tasks'] as const;

/** The raw (not yet validated) sections of a configuration folder, each entry tagged with its file. */
export interface RawConfig {
  sections: Record<string, unknown[]>;
  files: string[];
}

/**
 * Reads every `*.yaml`, `*.yml` and `*.json` file of `dir` (not recursive, in name order). Each file
 * holds any of the top-level sections; entries are concatenated. Unknown sections are errors.
 */
export async function readConfigFolder(dir: string): Promise<RawConfig> {
  const entries = (await readdir(dir)).filter((f) => /\.(ya?ml|json)$/.test(f)).sort();
  const sections: Record<string, unknown[]> = {};
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
      if (!Array.isArray(value)) {
        problems.push(`${file}: section "${key}" must be a list`);
        continue;
      }
      (sections[key] ??= []).push(...value);
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return { sections, files: entries };
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
  if (problems.length) throw new ConfigError(problems);
  return doc;
}

/** Reads and validates a configuration folder. */
export async function loadConfigFolder(dir: string): Promise<ConfigDocument> {
  const raw = await readConfigFolder(dir);
  return validateConfig(raw.sections);
}
