import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { timeOrderedId } from '../../src/lib/ids.js';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('timeOrderedId', () => {
  it('is a UUIDv7 whose first 48 bits are the given Unix milliseconds', () => {
    const ms = Date.UTC(2026, 11, 2, 3, 30, 0, 123);
    const id = timeOrderedId(ms);
    expect(id).toMatch(V7);
    expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(ms);
    // Every route that takes an id validates it as z.uuid(), which must accept version 7.
    expect(z.uuid().safeParse(id).success).toBe(true);
  });

  it('sorts by time, and ids of one millisecond differ, across refills of the random pool', () => {
    const ms = Date.UTC(2026, 11, 2);
    const sameMs = Array.from({ length: 1_000 }, () => timeOrderedId(ms));
    expect(new Set(sameMs).size).toBe(1_000);
    for (const id of sameMs) expect(id).toMatch(V7);
    // Lexical order of the text is index order in Postgres (uuid compares bytewise): later is greater.
    const later = [ms + 1, ms + 1_000, ms + 86_400_000].map((t) => timeOrderedId(t));
    const all = [...sameMs.slice(0, 3), ...later];
    expect([...all].sort()).toEqual([...[...sameMs.slice(0, 3)].sort(), ...later]);
  });
});
