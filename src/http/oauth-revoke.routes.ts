import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../deps.js';
import { verifyOwnAccessToken } from '../grants/own-token.js';
import { revokeGrants } from '../grants/revocation.service.js';
import { parseOrThrow } from '../lib/validation.js';
import { noStore } from './grants.routes.js';
import { formBody } from './body.js';

const revokeForm = z.object({
  token: z.string().min(1).max(8192),
  token_type_hint: z.string().optional(),
});

/**
 * RFC 7009 revocation for the token holder: possession of the access token is the authentication (a
 * workload is a public client here). The answer is 200 whether or not the token was valid, active or
 * already revoked (§2.2), so the endpoint tells a caller nothing about tokens it does not hold.
 */
export function revokeRoutes(deps: Deps): Router {
  const r = Router();
  r.post('/oauth2/revoke', formBody('16kb', 10), async (req, res) => {
    const form = parseOrThrow(revokeForm, req.body ?? {}, 'The revocation request');
    let claims;
    try {
      claims = await verifyOwnAccessToken(deps, form.token);
    } catch {
      claims = undefined;
    }
    if (claims) {
      await revokeGrants(deps.db, { grantIds: [String(claims.jti)] }, { actor: `workload:${String(claims.sub)}`, reason: 'revoked by the token holder', requestId: res.locals.requestId as string }, deps.clock.now());
    }
    noStore(res).status(200).end();
  });
  return r;
}
