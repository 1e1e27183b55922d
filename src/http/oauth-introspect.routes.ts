import { Router, type Request } from 'express';
import { z } from 'zod';
import type { Deps } from '../deps.js';
import { authenticateResourceServer, type ResourceServer } from '../grants/resource-servers.js';
import { introspect } from '../grants/introspection.service.js';
import { TesseraError } from '../lib/errors.js';
import { parseOrThrow } from '../lib/validation.js';
import { noStore } from './grants.routes.js';
import { formBody } from './body.js';

const introspectForm = z.object({
  token: z.string().min(1).max(8192),
  token_type_hint: z.string().optional(),
});

const invalidClient = (logDetail: string) => new TesseraError(401, 'invalid_client', 'Client authentication failed.', { logDetail });

/** RFC 6749 §2.3.1 HTTP Basic: id and secret are form-encoded, then joined and base64-encoded. */
async function resourceServerOf(deps: Deps, req: Request): Promise<ResourceServer> {
  const match = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(req.get('authorization') ?? '');
  if (!match) throw invalidClient('missing or malformed Basic authorization');
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw invalidClient('Basic credentials without a colon');
  let id: string;
  let secret: string;
  try {
    id = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
    secret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '));
  } catch {
    throw invalidClient('Basic credentials are not form-encoded');
  }
  const rs = await authenticateResourceServer(deps.db, id, secret);
  if (!rs) throw invalidClient(`unknown resource server or wrong secret for ${id.slice(0, 64)}`);
  return rs;
}

/**
 * RFC 7662 token introspection for registered resource servers (HTTP Basic client authentication).
 * `active` reflects the grant's state now; an inactive answer is only `{ "active": false }`.
 */
export function introspectRoutes(deps: Deps): Router {
  const r = Router();
  r.post('/oauth2/introspect', formBody('16kb', 10), async (req, res) => {
    res.setHeader('WWW-Authenticate', 'Basic realm="tessera"');
    const rs = await resourceServerOf(deps, req);
    res.removeHeader('WWW-Authenticate');
    const form = parseOrThrow(introspectForm, req.body ?? {}, 'The introspection request');
    noStore(res).json(await introspect(deps, form.token, rs));
  });
  return r;
}
