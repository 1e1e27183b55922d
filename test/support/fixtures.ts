import { generateKeyPair, exportJWK, SignJWT, type CryptoKey, type JWK } from 'jose';
import type { FakeIssuer } from './fake-issuer.js';

/** A registry for end-to-end tests: one CI issuer (the fake), a pipeline, an agent with a key, tasks. */
export function testConfig(issuer: FakeIssuer, agentJwk: JWK) {
  return {
    issuers: [{ id: 'ci', kind: 'oidc', issuer: issuer.url, jwks_uri: issuer.jwksUri, audiences: ['tessera'], algorithms: ['RS256', 'ES256'], jwks_cooldown_seconds: 30 }],
    workloads: [
      {
        id: 'api-deploy',
        kind: 'ci',
        owner: 'api-team',
        bindings: [{ issuer: 'ci', claims: { repository: 'acme/api', ref: 'refs/heads/main', job_workflow_ref: { pattern: 'acme/api/\\.github/workflows/deploy\\.yml@.*' } } }],
      },
      { id: 'web-deploy', kind: 'ci', owner: 'web-team', bindings: [{ issuer: 'ci', subject: 'repo:acme/web:ref:refs/heads/main' }] },
      { id: 'agent-1', kind: 'agent', owner: 'ops', public_keys: [agentJwk] },
    ],
    tasks: [
      {
        name: 'deploy-prod',
        scopes: ['deploy:write', 'deploy:read'],
        audience: 'https://deploy.example',
        max_ttl_seconds: 900,
        params: { service: { type: 'string', enum: ['api', 'worker'] }, replicas: { type: 'number', integer: true, minimum: 1, maximum: 10, required: false } },
        workloads: ['api-deploy'],
      },
      {
        name: 'refund-payment',
        scopes: ['payments:refund'],
        audience: 'https://payments.example',
        params: { amount: { type: 'number', maximum: 100 } },
        workloads: ['agent-*'],
        max_uses: 1,
      },
    ],
  };
}

export interface AgentKey {
  jwk: JWK;
  privateJwk: JWK;
  key: CryptoKey;
  /** An RFC 7523 client assertion for workload `id`, audience `aud`. */
  assertion(aud: string, claims?: Record<string, unknown>, iat?: number): Promise<string>;
}

export async function agentKey(id = 'agent-1'): Promise<AgentKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: `${id}-k1` };
  return {
    jwk,
    privateJwk: { ...(await exportJWK(privateKey)), kid: jwk.kid, alg: 'ES256' },
    key: privateKey,
    assertion: (aud, claims = {}, iat = Math.floor(Date.now() / 1000)) =>
      new SignJWT({ jti: crypto.randomUUID(), ...claims })
        .setProtectedHeader({ alg: 'ES256', kid: jwk.kid })
        .setIssuer(id)
        .setSubject(id)
        .setAudience(aud)
        .setIssuedAt(iat)
        .setExpirationTime(iat + 60)
        .sign(privateKey),
  };
}
