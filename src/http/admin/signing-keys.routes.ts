import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { revokeSigningKey } from '../../keys/emergency-revocation.js';
import { parseOrThrow } from '../../lib/validation.js';
import { adminOf, requireRole } from './admin-auth.js';
import { jsonBody } from '../body.js';

const revokeBody = z.strictObject({ reason: z.string().trim().min(1).max(1024) });

/** Emergency signing-key revocation (admin). Routine rotation is the scheduler's job. */
export function signingKeyRoutes(deps: Deps): Router {
  const r = Router();
  r.post('/signing-keys/:kid/revoke', requireRole(deps, 'admin'), jsonBody('16kb'), async (req, res) => {
    const body = parseOrThrow(revokeBody, req.body, 'The key revocation');
    const result = await revokeSigningKey(deps, req.params.kid as string, { actor: `admin:${adminOf(res).name}`, reason: body.reason }, deps.clock.now());
    res.json(result);
  });
  return r;
}
