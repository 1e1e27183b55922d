import { describe, expect, it } from 'vitest';
import { boundedMemo } from '../../src/lib/bounded-memo.js';

describe('boundedMemo', () => {
  it('computes a key once, but never stores past its bounds', () => {
    const calls: string[] = [];
    const upper = boundedMemo((k) => (calls.push(k), k.toUpperCase()), 2, 4);
    expect([upper('ab'), upper('ab'), upper('cd'), upper('cd')]).toEqual(['AB', 'AB', 'CD', 'CD']);
    expect(calls).toEqual(['ab', 'cd']);
    // Full: a third key is answered but computed again each time, as is a key longer than 4.
    expect([upper('ef'), upper('ef'), upper('longer'), upper('longer'), upper('ab')]).toEqual(['EF', 'EF', 'LONGER', 'LONGER', 'AB']);
    expect(calls).toEqual(['ab', 'cd', 'ef', 'ef', 'longer', 'longer']);
  });
});
