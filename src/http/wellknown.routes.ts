import { Router } from 'express';
import { sql } from 'kysely';
import type { Deps } from '../deps.js';
import { TOKEN_EXCHANGE } from './oauth.routes.js';
import { TASK_DETAILS_TYPE } from '../grants/access-token.js';

/** How long downstream services may cache JWKS; a rotation publishes the next key well before this. */
const JWKS_MAX_AGE_SECONDS = 300;

/** JWKS, RFC 8414 metadata, liveness and readiness. */
export function wellKnownRoutes(deps: Deps): Router {
  const r = Router();
  r.get('/.well-known/jwks.json', (_req, res) => {
    res.setHeader('Cache-Control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`).type('application/jwk-set+json').json(deps.keys.jwks());
  });
  r.get('/.well-known/oauth-authorization-server', (_req, res) => {
    res.setHeader('Cache-Control', 'public, max-age=3600').json({
      issuer: deps.issuer,
      token_endpoint: `${deps.issuer}/oauth2/token`,
      jwks_uri: `${deps.issuer}/.well-known/jwks.json`,
      introspection_endpoint: `${deps.issuer}/oauth2/introspect`,
      introspection_endpoint_auth_methods_supported: ['client_secret_basic'],
      revocation_endpoint: `${deps.issuer}/oauth2/revoke`,
      revocation_endpoint_auth_methods_supported: ['none'],
      scopes_supported: [...new Set([...deps.registry.snapshot.tasks.values()].flatMap((t) => t.spec.scopes))].sort(),
      grant_types_supported: [TOKEN_EXCHANGE],
      token_endpoint_auth_methods_supported: ['none'],
      response_types_supported: [],
      authorization_details_types_supported: [TASK_DETAILS_TYPE],
      token_endpoint_auth_signing_alg_values_supported: ['ES256', 'ES384', 'EdDSA', 'RS256', 'PS256'],
      service_documentation: 'https://github.com/tessera/tessera#readme',
    });
  });
  r.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  r.get('/readyz', async (_req, res) => {
    try {
      await sql`select 1`.execute(deps.db);
      res.json({ status: 'ready' });
    } catch {
      res.status(503).json({ status: 'unavailable', reason: 'database unreachable' });
    }
  });
  return r;
}
