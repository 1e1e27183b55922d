import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { writeFile, mkdir } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { signEs256 } from '../../src/keys/jws.js';
import { sha256Hex } from '../../src/lib/hash.js';
import { validateConfig } from '../../src/config/load-folder.js';

/** The task every bench and drill client asks for. */
export const BENCH_TASK = 'bench-deploy';
export const BENCH_AUDIENCE = 'https://deploy.bench.example';
export const CI_WORKLOAD = 'bench-ci';
export const AGENT_WORKLOAD = 'bench-agent';
export const MINT_BODY = JSON.stringify({ task: BENCH_TASK, params: { service: 'api' } });
/** The bench's signal source key (a bench-only value: the source and its key exist only in scratch clusters). */
const BENCH_SIGNAL_KEY = 'bench-attestor-key-not-a-secret';
/** The bench's one signal type's maximum age, in seconds. */
export const BENCH_SIGNAL_MAX_AGE = 3600;

/** Identity tokens the CI clients cycle through (the OIDC path has no replay check, like real CI tokens). */
export const IDENTITY_POOL = 256;
/** Identity tokens in a pool are reused for the whole run; a run is well under this. */
const IDENTITY_TOKEN_LIFETIME_SECONDS = 1800;

const nowSeconds = () => Math.floor(Date.now() / 1000);

interface EcKey {
  kid: string;
  privateKey: KeyObject;
  publicJwk: Record<string, unknown>;
}

function ecKey(kid: string): EcKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { kid, privateKey, publicJwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' } };
}

/** A CI OIDC issuer on a loopback port, signing ES256 like a CI would (node:crypto, so clients stay cheap). */
export interface BenchIssuer {
  url: string;
  jwksUri: string;
  jwksFetches: number;
  /** A GitHub-Actions-shaped identity token for the bench CI workload. */
  token(): string;
  close(): Promise<void>;
}

export async function startBenchIssuer(): Promise<BenchIssuer> {
  const key = ecKey('bench-ci-k1');
  const state = { fetches: 0 };
  const server = http.createServer((req, res) => {
    if (req.url !== '/jwks') {
      res.statusCode = 404;
      res.end();
      return;
    }
    state.fetches++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [key.publicJwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    jwksUri: `${url}/jwks`,
    get jwksFetches() {
      return state.fetches;
    },
    token() {
      const iat = nowSeconds();
      return signEs256(
        { kid: key.kid, typ: 'JWT' },
        {
          iss: url,
          aud: 'tessera',
          sub: 'repo:bench/api:ref:refs/heads/main',
          repository: 'bench/api',
          ref: 'refs/heads/main',
          jti: randomUUID(),
          iat,
          nbf: iat,
          exp: iat + IDENTITY_TOKEN_LIFETIME_SECONDS,
        },
        key.privateKey,
      );
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** An agent workload holding its own key: RFC 7523 client assertions, each with a fresh jti. */
export interface BenchAgent {
  publicJwk: Record<string, unknown>;
  assertion(audience: string): string;
}

export function benchAgent(): BenchAgent {
  const key = ecKey(`${AGENT_WORKLOAD}-k1`);
  return {
    publicJwk: key.publicJwk,
    assertion(audience) {
      const iat = nowSeconds();
      return signEs256(
        { kid: key.kid, typ: 'JWT' },
        { iss: AGENT_WORKLOAD, sub: AGENT_WORKLOAD, aud: audience, jti: randomUUID(), iat, exp: iat + 60 },
        key.privateKey,
      );
    },
  };
}

/** Writes the bench registry (one CI issuer, a CI workload, an agent, one task, its policy) as a config folder. */
export async function writeBenchConfig(dir: string, issuer: BenchIssuer, agent: BenchAgent): Promise<string> {
  const doc = {
    issuers: [
      {
        id: 'bench-ci',
        kind: 'oidc',
        issuer: issuer.url,
        jwks_uri: issuer.jwksUri,
        audiences: ['tessera'],
        algorithms: ['ES256'],
        max_token_age_seconds: IDENTITY_TOKEN_LIFETIME_SECONDS,
      },
    ],
    workloads: [
      { id: CI_WORKLOAD, kind: 'ci', owner: 'bench', bindings: [{ issuer: 'bench-ci', claims: { repository: 'bench/api', ref: 'refs/heads/main' } }] },
      { id: AGENT_WORKLOAD, kind: 'agent', owner: 'bench', public_keys: [agent.publicJwk] },
    ],
    tasks: [
      {
        name: BENCH_TASK,
        scopes: ['deploy:write'],
        audience: BENCH_AUDIENCE,
        params: { service: { type: 'string', enum: ['api', 'worker'] } },
        workloads: [CI_WORKLOAD, AGENT_WORKLOAD],
      },
    ],
    // A signal type as the demo registers them: every mint reads its newest observation (seedBenchSignal
    // stores one, "trusted", so the forbid below reads it and never trips), as a deployment that uses signals does.
    signal_types: [
      { name: 'runner_trust', description: 'runner attestation', reason: 'untrusted runners must not deploy', subject_kind: 'workload', value: { type: 'string', enum: ['trusted', 'untrusted'] }, sources: ['bench-attestor'], max_age_seconds: BENCH_SIGNAL_MAX_AGE },
    ],
    signal_sources: [{ id: 'bench-attestor', api_key_sha256: sha256Hex(BENCH_SIGNAL_KEY) }],
    // A policy shaped like the demo ones, so every mint gathers signals and history and runs Cedar:
    // a permit with a TTL cap, a rate forbid the load never trips, and a signal forbid.
    policies: [
      {
        file: 'bench.cedar',
        text: `@id("bench-permit") @max_ttl("600") permit (principal is Workload, action == Action::"${BENCH_TASK}", resource) when { context.params.service == "api" };
@id("bench-rate") @reason("rate spike") forbid (principal, action == Action::"${BENCH_TASK}", resource) when { context.broker.requests_last_minute > 100000000 };
@id("bench-runner") @reason("untrusted runner") forbid (principal, action == Action::"${BENCH_TASK}", resource) when { context.signals has runner_trust && context.signals.runner_trust == "untrusted" };`,
      },
    ],
  };
  validateConfig(doc); // fail here, with the field named, rather than in the broker's start-up log
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'bench.json'), JSON.stringify(doc, null, 2));
  return dir;
}

/** Stores the bench CI workload's runner_trust observation ("trusted") through the broker's signals API. */
export async function seedBenchSignal(brokerUrl: string): Promise<void> {
  const res = await fetch(`${brokerUrl}/v1/signals`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${BENCH_SIGNAL_KEY}` },
    body: JSON.stringify({ signals: [{ type: 'runner_trust', subject: CI_WORKLOAD, value: 'trusted', observed_at: new Date().toISOString() }] }),
  });
  if (res.status !== 202) throw new Error(`seeding the bench signal: ${res.status} ${await res.text()}`);
}
