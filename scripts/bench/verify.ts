import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { createVerifier } from '../../src/verify/index.js';
import { accessTokenClaims } from '../../src/grants/access-token.js';
import { signEs256 } from '../../src/keys/jws.js';
import { BENCH_AUDIENCE, BENCH_TASK } from '../lib/identities.js';
import { sleep } from '../lib/stats.js';
import { timeConcurrent, type RateResult } from './raw-limits.js';

/** A downstream service verifies requests as they arrive; this many are in flight at once. */
const VERIFY_CONCURRENCY = 8;

export interface VerifyBench {
  rawJose: RateResult;
  tesseraVerify: RateResult;
  ratio: number;
  /** JWKS fetches during the steady run: 1 with a working cache. */
  steadyFetches: number;
  /** Token Status List fetches during the steady run (its ttl decides how many; not JWKS). */
  statusListFetches: number;
  burst: { tokens: number; fetches: number; unknownKidFetchesWithinCooldown: number; verified: number };
}

/** tessera/verify against plain jose on the same broker tokens, then the JWKS refetch behaviour on rotation. */
export async function benchVerify(brokerUrl: string, tokens: string[], ms: number): Promise<VerifyBench> {
  const jwks = (await (await fetch(`${brokerUrl}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
  const localSet = createLocalJWKSet(jwks);
  const options = { typ: 'at+jwt', algorithms: ['ES256'], issuer: brokerUrl, audience: BENCH_AUDIENCE, requiredClaims: ['exp', 'iat', 'jti', 'sub', 'scope', 'task'], clockTolerance: 5 };
  let i = 0;
  const rawJose = await timeConcurrent(ms, VERIFY_CONCURRENCY, () => jwtVerify(tokens[i++ % tokens.length]!, localSet, { ...options, currentDate: new Date() }));

  let steadyFetches = 0;
  let statusListFetches = 0;
  // The verifier fetches the JWKS and, for tokens that carry a status claim, the status list: count apart.
  const counting: typeof fetch = (input, init) => {
    if (String(input instanceof Request ? input.url : input).endsWith('/.well-known/jwks.json')) steadyFetches++;
    else statusListFetches++;
    return fetch(input, init);
  };
  const verifier = createVerifier({ issuer: brokerUrl, audience: BENCH_AUDIENCE, fetch: counting });
  const tesseraVerify = await timeConcurrent(ms, VERIFY_CONCURRENCY, () => verifier.verify(tokens[i++ % tokens.length]!, { scope: 'deploy:write', task: BENCH_TASK }));
  return { rawJose, tesseraVerify, ratio: tesseraVerify.rps / rawJose.rps, steadyFetches, statusListFetches, burst: await rotationBurst() };
}

const COOLDOWN_SECONDS = 1;
const BURST = 500;

/**
 * A key rotation seen by a verifier: the issuer publishes k2, then BURST tokens signed with it arrive at
 * once. Expect one JWKS fetch for the whole burst, and none for an unknown kid inside the cooldown.
 */
async function rotationBurst(): Promise<VerifyBench['burst']> {
  const keys: Array<{ kid: string; key: KeyObject; jwk: Record<string, unknown> }> = [];
  const addKey = (kid: string) => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const k = { kid, key: privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' } };
    keys.push(k);
    return k;
  };
  const published = new Set<string>();
  let fetches = 0;
  const server = http.createServer((_req, res) => {
    fetches++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: keys.filter((k) => published.has(k.kid)).map((k) => k.jwk) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const token = (k: { kid: string; key: KeyObject }) => {
      const now = new Date();
      const claims = accessTokenClaims({ issuer, grantId: randomUUID(), workloadId: 'w', audience: BENCH_AUDIENCE, scopes: ['deploy:write'], task: BENCH_TASK, params: {}, issuedAt: now, expiresAt: new Date(now.getTime() + 300_000) });
      return signEs256({ typ: 'at+jwt', kid: k.kid }, claims, k.key);
    };
    const k1 = addKey('k1');
    published.add('k1');
    const verifier = createVerifier({ issuer, audience: BENCH_AUDIENCE, jwksCooldownSeconds: COOLDOWN_SECONDS });
    await verifier.verify(token(k1));
    const k2 = addKey('k2');
    published.add('k2');
    await sleep(COOLDOWN_SECONDS * 1000 + 100);
    const before = fetches;
    const results = await Promise.allSettled(Array.from({ length: BURST }, () => verifier.verify(token(k2))));
    const burstFetches = fetches - before;
    // k3 is never published: inside the cooldown it must not cause a fetch, however often it arrives.
    const k3 = addKey('k3');
    const beforeUnknown = fetches;
    await Promise.allSettled(Array.from({ length: 100 }, () => verifier.verify(token(k3))));
    return { tokens: BURST, fetches: burstFetches, unknownKidFetchesWithinCooldown: fetches - beforeUnknown, verified: results.filter((r) => r.status === 'fulfilled').length };
  } finally {
    server.close();
  }
}
