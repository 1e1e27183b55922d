import { existsSync } from 'node:fs';
import path from 'node:path';
import { UsageError, type Command } from '../command.js';
import { ConfigError, compileDocumentPolicies, loadConfigFolder } from '../../config/load-folder.js';
import { loadPolicyTestFolder, runPolicyTests, PolicyTestFileError } from '../../policy/index.js';

const usage = `Usage: tessera policy test <config-dir> [--cases <dir>]

Validates the Cedar policies of a configuration folder against its tasks, signal types and
calendars, then runs policy test cases (YAML files of request + signals -> expected outcome).
Runs offline, so CI can check a policy change before it is applied. Exit code 1 if any case
fails or there are no cases at all.

Options:
  --cases <dir>   folder of *.yaml test cases (default: <config-dir>/tests)
  --verbose       print every case, not only failures`;

export const policyCommand: Command = {
  name: 'policy',
  summary: 'policy tools: `policy test <dir>` runs policy test cases offline',
  usage,
  allowPositionals: true,
  options: { cases: { type: 'string' }, verbose: { type: 'boolean', short: 'v' } },
  async run(v, positionals) {
    const [sub, dir] = positionals;
    if (sub !== 'test' || !dir || positionals.length !== 2) throw new UsageError('usage: tessera policy test <config-dir>');
    const casesDir = (v.cases as string | undefined) ?? path.join(dir, 'tests');
    if (!existsSync(casesDir)) throw new UsageError(`no test cases at ${casesDir} (give --cases)`);
    let compiled;
    try {
      const doc = await loadConfigFolder(dir);
      if (!doc.policies.length) throw new UsageError(`${dir} has no *.cedar policies`);
      compiled = compileDocumentPolicies(doc);
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`tessera policy test: ${dir}: ${err.message}\n`);
        return 1;
      }
      throw err;
    }
    let cases;
    try {
      cases = await loadPolicyTestFolder(casesDir);
    } catch (err) {
      if (err instanceof PolicyTestFileError) {
        process.stderr.write(`tessera policy test: ${err.message}\n`);
        return 1;
      }
      throw err;
    }
    // Zero cases pass vacuously: a CI step that checks nothing must not look green.
    if (!cases.length) {
      process.stderr.write(`tessera policy test: no test cases in ${casesDir} (*.yaml files, each a list of cases)\n`);
      return 1;
    }
    const results = runPolicyTests(compiled, cases);
    for (const r of results) {
      if (r.passed && !v.verbose) continue;
      process.stdout.write(`${r.passed ? 'ok  ' : 'FAIL'} ${r.file ? `${r.file}: ` : ''}${r.name}\n`);
      for (const f of r.failures) process.stdout.write(`       ${f}\n`);
    }
    const failed = results.filter((r) => !r.passed).length;
    process.stdout.write(`policy version ${compiled.version.slice(0, 12)}: ${results.length - failed} passed, ${failed} failed\n`);
    return failed ? 1 : 0;
  },
};
