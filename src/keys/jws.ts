import { sign, type KeyObject } from 'node:crypto';

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/**
 * Signs a compact JWS with ES256 through node:crypto and a KeyObject imported once. jose's WebCrypto
 * path costs several times more per signature on Node 20, and minting is the broker's hot path.
 */
export function signEs256(header: Record<string, unknown>, payload: Record<string, unknown>, key: KeyObject): string {
  const input = `${b64({ ...header, alg: 'ES256' })}.${b64(payload)}`;
  const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}
