import { createHash, timingSafeEqual } from 'node:crypto';
import { boundedMemo } from './bounded-memo.js';

/** Hex SHA-256 of a string or bytes: how tokens and secrets are referred to once they have been used. */
export function sha256Hex(input: string | Uint8Array): string {
  return createHash('sha256').update(input).digest('hex');
}

/** Constant-time comparison of two strings (different lengths compare false without leaking where). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  if (ab.length !== bb.length) {
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}

/** Keys written as JSON strings, kept once seen: a mint writes the same few dozen keys in every digest. */
const quotedKey = boundedMemo((key) => JSON.stringify(key));

/**
 * Canonical JSON: object keys sorted, no whitespace. Two equal values always serialise to the same
 * string, so their hash can bind an approval to one action or chain audit events. Keys whose value is
 * undefined are left out; anything else JSON cannot hold (undefined in an array, a function) is null.
 * Written as one pass over the value without intermediate arrays: every mint hashes several of these.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonicalJson(value[i]);
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  // The default sort compares UTF-16 code units, as `a < b` does.
  const keys = Object.keys(record).sort();
  let out = '{';
  for (const key of keys) {
    const v = record[key];
    if (v === undefined) continue;
    out += `${out.length === 1 ? '' : ','}${quotedKey(key)}:${canonicalJson(v)}`;
  }
  return `${out}}`;
}
