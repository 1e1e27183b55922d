import { describe, expect, it } from 'vitest';
import { deflateSync } from 'node:zlib';
import {
  buildStatusListClaims,
  decodeStatusList,
  encodeStatusList,
  statusAt,
  type StatusBits,
} from '../../src/verify/status-list.js';

// Examples from draft-ietf-oauth-status-list, section "Status List" (1-bit and 2-bit lists).
const DRAFT_1BIT = { statuses: [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1], lst: 'eNrbuRgAAhcBXQ' };
const DRAFT_2BIT = { statuses: [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3], lst: 'eNo76fITAAPfAgc' };

describe('status list codec', () => {
  it('encodes the draft 1-bit example byte for byte', () => {
    expect(encodeStatusList(Uint8Array.from(DRAFT_1BIT.statuses), 1)).toEqual({ bits: 1, lst: DRAFT_1BIT.lst });
    const list = decodeStatusList({ bits: 1, lst: DRAFT_1BIT.lst });
    expect(Array.from(list.bytes)).toEqual([0xb9, 0xa3]);
    expect(DRAFT_1BIT.statuses.map((_, i) => statusAt(list, i))).toEqual(DRAFT_1BIT.statuses);
  });

  it('encodes the draft 2-bit example byte for byte', () => {
    expect(encodeStatusList(Uint8Array.from(DRAFT_2BIT.statuses), 2).lst).toBe(DRAFT_2BIT.lst);
    const list = decodeStatusList({ bits: 2, lst: DRAFT_2BIT.lst });
    expect(DRAFT_2BIT.statuses.map((_, i) => statusAt(list, i))).toEqual(DRAFT_2BIT.statuses);
  });

  it.each([1, 2, 4, 8] as StatusBits[])('round-trips 100,000 entries at %i bits', (bits) => {
    const statuses = new Uint8Array(100_000);
    let seed = 42;
    for (let i = 0; i < statuses.length; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      statuses[i] = seed % (1 << bits);
    }
    const list = decodeStatusList(encodeStatusList(statuses, bits));
    expect(list.bytes.length).toBe(Math.ceil((100_000 * bits) / 8));
    for (let i = 0; i < statuses.length; i++) {
      if (statusAt(list, i) !== statuses[i]) throw new Error(`mismatch at ${i}`);
    }
  });

  it('refuses values that do not fit, bad bits, and indexes outside the list', () => {
    expect(() => encodeStatusList(Uint8Array.from([2]), 1)).toThrow(RangeError);
    expect(() => encodeStatusList(Uint8Array.from([0]), 3 as StatusBits)).toThrow(TypeError);
    expect(() => decodeStatusList({ bits: 3, lst: DRAFT_1BIT.lst })).toThrow(TypeError);
    expect(() => decodeStatusList({ bits: 1, lst: 'not base64url!' })).toThrow(TypeError);
    const list = decodeStatusList({ bits: 1, lst: DRAFT_1BIT.lst });
    expect(() => statusAt(list, 16)).toThrow(RangeError);
    expect(() => statusAt(list, -1)).toThrow(RangeError);
  });

  it('refuses a list that inflates beyond the size limit', () => {
    const bomb = deflateSync(Buffer.alloc(17 * 1024 * 1024)).toString('base64url');
    expect(() => decodeStatusList({ bits: 1, lst: bomb })).toThrow(RangeError);
  });

  it('builds the claims the broker signs', () => {
    const claims = buildStatusListClaims({
      uri: 'https://broker.example/v1/status/1',
      statuses: Uint8Array.from(DRAFT_1BIT.statuses),
      bits: 1,
      iat: 1_700_000_000,
      exp: 1_700_003_600,
      ttl: 300,
    });
    expect(claims).toEqual({
      sub: 'https://broker.example/v1/status/1',
      iat: 1_700_000_000,
      exp: 1_700_003_600,
      ttl: 300,
      status_list: { bits: 1, lst: DRAFT_1BIT.lst },
    });
  });
});
