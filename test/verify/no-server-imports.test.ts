import { describe, expect, it } from 'vitest';
import { ESLint } from 'eslint';

describe('src/verify stays a library without server imports', () => {
  it('lint refuses an import from outside src/verify, type-only ones included, and passes the real files', async () => {
    const eslint = new ESLint();
    const [bad] = await eslint.lintText("import { sha256Hex } from '../lib/hash.js';\nimport type { Deps } from '../deps.js';\nexport const f = (d: Deps) => sha256Hex(String(d));\n", {
      filePath: 'src/verify/example.ts',
    });
    expect(bad!.messages.map((m) => [m.line, m.ruleId])).toEqual([
      [1, 'no-restricted-imports'],
      [2, 'no-restricted-imports'],
    ]);
    const real = await eslint.lintFiles(['src/verify/']);
    expect(real.flatMap((r) => r.messages.filter((m) => m.ruleId === 'no-restricted-imports'))).toEqual([]);
  });
});
