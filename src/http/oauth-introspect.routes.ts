import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../deps.js';
import { introspect } from '../grants/introspection.service.js';
import { resourceServerOf } from './resource-server-auth.js';
import { parseOrThrow } from '../lib/validation.js';
import { noStore } from './grants.routes.js';
import { formBody } from './body.js';

const introspectForm = z.object({
  token: z.string().min(1).max(8192),
  token_type_hint: z.string().optional(),
});

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
    noStore(res).json(await introspect(deps, form.token, rs, res.locals.requestId as string));
  });
  return r;
}
