import { readFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { importJWK, SignJWT, type JWK } from 'jose';
import { UsageError } from './command.js';

/** Where the identity token is looked for when no source is named. */
const DEFAULT_TOKEN_ENV = 'TESSERA_IDENTITY_TOKEN';

export interface IdentityOptions {
  identityTokenFile?: string | undefined;
  identityTokenEnv?: string | undefined;
  audience?: string | undefined;
  assertionKey?: string | undefined;
  clientId?: string | undefined;
  broker: string;
}

/**
 * The workload's identity token, from (in order): a file, an environment variable, an RFC 7523
 * assertion signed with a local key, or GitHub Actions' OIDC request variables.
 */
export async function obtainIdentityToken(o: IdentityOptions): Promise<string> {
  // A source named explicitly must deliver: falling through to another identity would be a surprise.
  if (o.identityTokenFile) return nonEmpty((await readFile(o.identityTokenFile, 'utf8')).trim(), `--identity-token-file ${o.identityTokenFile} is empty`);
  if (o.identityTokenEnv) return nonEmpty(process.env[o.identityTokenEnv]?.trim(), `--identity-token-env: ${o.identityTokenEnv} is not set or empty`);
  const fromEnv = process.env[DEFAULT_TOKEN_ENV]?.trim();
  if (fromEnv) return fromEnv;
  if (o.assertionKey) {
    if (!o.clientId) throw new UsageError('--assertion-key needs --client-id (the workload id)');
    return clientAssertion(o.assertionKey, o.clientId, o.broker);
  }
  const ghUrl = process.env.ACTIONS_ID_TOKEN_REQUEST_URL;
  const ghToken = process.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
  if (ghUrl && ghToken) return githubActionsToken(ghUrl, ghToken, o.audience ?? 'tessera');
  throw new UsageError(
    `no identity token: give --identity-token-file, set ${DEFAULT_TOKEN_ENV}, use --assertion-key with --client-id, or run in GitHub Actions with "permissions: id-token: write"`,
  );
}

function nonEmpty(token: string | undefined, problem: string): string {
  if (!token) throw new UsageError(problem);
  return token;
}

async function githubActionsToken(requestUrl: string, requestToken: string, audience: string): Promise<string> {
  const url = new URL(requestUrl);
  url.searchParams.set('audience', audience);
  const res = await fetch(url, { headers: { authorization: `Bearer ${requestToken}`, accept: 'application/json' }, signal: AbortSignal.timeout(15_000) });
  if (!res.ok) throw new Error(`GitHub Actions OIDC request failed: ${res.status}`);
  const body = (await res.json()) as { value?: string };
  if (!body.value) throw new Error('GitHub Actions OIDC response has no token');
  return body.value;
}

/** A one-minute RFC 7523 client assertion: iss = sub = the workload, aud = the broker, fresh jti. */
async function clientAssertion(keyFile: string, clientId: string, broker: string): Promise<string> {
  const jwk = JSON.parse(await readFile(keyFile, 'utf8')) as JWK;
  if (!jwk.d) throw new UsageError(`${keyFile} holds no private key`);
  const alg = jwk.alg ?? (jwk.kty === 'EC' ? 'ES256' : jwk.kty === 'OKP' ? 'EdDSA' : 'RS256');
  const key = await importJWK(jwk, alg);
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg, ...(jwk.kid && { kid: jwk.kid }) })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(broker)
    .setIssuedAt(now)
    .setExpirationTime(now + 60)
    .sign(key);
}
