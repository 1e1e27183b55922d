import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { buildStatusListClaims, type StatusBits } from '../../src/verify/status-list.js';

/** The instant every test freezes its verifier clock at. */
export const NOW = new Date('2030-06-01T12:00:00Z');
export const NOW_S = Math.floor(NOW.getTime() / 1000);

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

/** A fresh ES256 key pair whose public half is ready for a JWKS. */
export async function makeKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

type StatusRoute = { kind: 'jwt'; body: string } | { kind: 'fail' };

/**
 * A stand-in for the broker's public endpoints on a real port: the JWKS and Status List Tokens,
 * counting every request so tests can assert on caching and single-flight fetching.
 */
export class FakeBroker {
  readonly requests = { jwks: 0, status: 0 };
  readonly statusAccept: string[] = [];
  published: SigningKey[] = [];
  #server: Server | undefined;
  #statusRoutes = new Map<string, StatusRoute>();
  issuer = '';

  async start(): Promise<this> {
    this.#server = createServer((req, res) => {
      if (req.url === '/.well-known/jwks.json') {
        this.requests.jwks++;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ keys: this.published.map((k) => k.publicJwk) }));
        return;
      }
      const route = this.#statusRoutes.get(req.url ?? '');
      if (route) {
        this.requests.status++;
        this.statusAccept.push(req.headers.accept ?? '');
        if (route.kind === 'fail') res.writeHead(500).end();
        else res.writeHead(200, { 'content-type': 'application/statuslist+jwt' }).end(route.body);
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.issuer = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve, reject) => this.#server?.close((err) => (err ? reject(err) : resolve())));
  }

  /** Default claims of a `refund-payment` token; override any of them. */
  claims(overrides: Record<string, unknown> = {}): JWTPayload {
    return {
      iss: this.issuer,
      sub: 'wl_agent_1',
      aud: 'payments',
      iat: NOW_S,
      nbf: NOW_S,
      exp: NOW_S + 300,
      jti: 'grt_01',
      client_id: 'wl_agent_1',
      scope: 'payments:refund payments:read',
      task: 'refund-payment',
      authorization_details: [{ type: 'tessera_task', task: 'refund-payment', params: { amount: 50 } }],
      decision_id: 'dec_01',
      ...overrides,
    };
  }

  /** Signs an access token the way the broker does (ES256, kid, typ at+jwt) unless told otherwise. */
  async token(
    key: SigningKey,
    overrides: Record<string, unknown> = {},
    header: Record<string, unknown> = {},
  ): Promise<string> {
    return new SignJWT(this.claims(overrides))
      .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'at+jwt', ...header })
      .sign(key.privateKey);
  }

  /** The absolute URL of a status list path on this server. */
  statusUri(path: string): string {
    return `${this.issuer}${path}`;
  }

  /** Serves a signed Status List Token at `path`. */
  async publishStatusList(
    key: SigningKey,
    path: string,
    statuses: number[],
    opts: { bits?: StatusBits; ttl?: number; exp?: number; typ?: string; sub?: string } = {},
  ): Promise<void> {
    const claims = buildStatusListClaims({
      uri: this.statusUri(path),
      statuses: Uint8Array.from(statuses),
      bits: opts.bits ?? 1,
      iat: NOW_S,
      exp: opts.exp ?? NOW_S + 3600,
      ttl: opts.ttl ?? 300,
    });
    const body = await new SignJWT({ ...claims, ...(opts.sub ? { sub: opts.sub } : {}) })
      .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: opts.typ ?? 'statuslist+jwt' })
      .sign(key.privateKey);
    this.#statusRoutes.set(path, { kind: 'jwt', body });
  }

  /** Makes `path` answer HTTP 500, as a status endpoint in an outage would. */
  failStatusList(path: string): void {
    this.#statusRoutes.set(path, { kind: 'fail' });
  }
}
