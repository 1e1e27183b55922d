import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type CryptoKey } from 'jose';

export interface FakeIssuer {
  url: string;
  jwksUri: string;
  /** How many times the JWKS was fetched (or asked for while down). */
  jwksFetches: number;
  /** While true, the JWKS endpoint answers 503: an issuer outage. */
  jwksDown: boolean;
  /** Mints a GitHub-Actions-shaped OIDC token; `claims` override the defaults. */
  token(claims?: Record<string, unknown>, options?: { kid?: string; alg?: string; header?: Record<string, unknown>; key?: CryptoKey; iat?: number }): Promise<string>;
  /** Adds a new signing key, served in the JWKS from now on; returns its kid. */
  rotate(): Promise<string>;
  close(): Promise<void>;
}

interface Key {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

async function newKey(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

/** A CI OIDC provider on a real local port: serves discovery and JWKS, signs tokens like GitHub's. */
export async function startFakeIssuer(options: { now?: () => Date } = {}): Promise<FakeIssuer> {
  const keys: Key[] = [await newKey('k1')];
  const state = { jwksFetches: 0, jwksDown: false };
  const server = http.createServer((req, res) => {
    if (req.url === '/.well-known/jwks') {
      state.jwksFetches++;
      if (state.jwksDown) {
        res.statusCode = 503;
        res.end();
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: keys.map((k) => k.publicJwk) }));
      return;
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const now = options.now ?? (() => new Date());

  return {
    url,
    jwksUri: `${url}/.well-known/jwks`,
    get jwksFetches() {
      return state.jwksFetches;
    },
    get jwksDown() {
      return state.jwksDown;
    },
    set jwksDown(down: boolean) {
      state.jwksDown = down;
    },
    async token(claims = {}, opts = {}) {
      const key = keys.find((k) => k.kid === (opts.kid ?? keys[keys.length - 1]!.kid)) ?? keys[0]!;
      const iat = opts.iat ?? Math.floor(now().getTime() / 1000);
      return new SignJWT({
        iss: url,
        aud: 'tessera',
        sub: 'repo:acme/api:environment:production',
        repository: 'acme/api',
        repository_owner: 'acme',
        ref: 'refs/heads/main',
        environment: 'production',
        job_workflow_ref: 'acme/api/.github/workflows/deploy.yml@refs/heads/main',
        runner_environment: 'github-hosted',
        iat,
        nbf: iat,
        exp: iat + 300,
        ...claims,
      })
        .setProtectedHeader({ alg: opts.alg ?? 'RS256', kid: opts.kid ?? key.kid, typ: 'JWT', ...opts.header })
        .sign(opts.key ?? key.privateKey);
    },
    async rotate() {
      const k = await newKey(`k${keys.length + 1}`);
      keys.push(k);
      return k.kid;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
