import { randomBytes, randomUUID } from 'node:crypto';

/** A new random UUID (v4), used for grant, decision and request ids. */
export const newId = (): string => randomUUID();

/** A URL-safe random secret of `bytes` bytes of entropy (API keys, KEKs). */
export function randomSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}
