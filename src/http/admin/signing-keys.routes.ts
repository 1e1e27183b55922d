import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { revokeSigningKey } from '../../keys/emergency-revocation.js';
import { parseOrThrow } from '../../lib/validation.js';
import { adminAct } from './admin-action.js';
import { mountAdminRoute } from './admin-route.js';
import { ADMIN_ROUTES } from './route-roles.js';

const revokeBody = z.strictObject({ reason: z.string().trim().min(1).max(1024) });

/** Emergency signing-key revocation (admin). Routine rotation is the scheduler's job. */
export function signingKeyRoutes(deps: Deps): Router {
  const r = Router();
  mountAdminRoute(r, deps, ADMIN_ROUTES.revokeSigningKey, async (req, res) => {
    const body = parseOrThrow(revokeBody, req.body, 'The key revocation');
    const kid = String(req.params.kid);
    const result = await adminAct(deps, res, { action: ADMIN_ROUTES.revokeSigningKey.audit, target_type: 'signing_key', target_id: kid }, async (actor) => {
      const done = await revokeSigningKey(deps, kid, { actor, reason: body.reason }, deps.clock.now());
      return { result: done, data: { reason: body.reason, changed: done.changed, grants_revoked: done.grants_revoked, current_kid: done.current_kid } };
    });
    res.json(result);
  });
  return r;
}
