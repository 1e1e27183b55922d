import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import type { GrantSelector } from '../../grants/grant.repository.js';
import { revokeGrant, revokeGrants } from '../../grants/revocation.service.js';
import { notFound, TesseraError } from '../../lib/errors.js';
import { parseOrThrow } from '../../lib/validation.js';
import { roleAtLeast } from './admin-keys.js';
import { adminOf } from './admin-auth.js';
import { adminAct } from './admin-action.js';
import { mountAdminRoute } from './admin-route.js';
import { ADMIN_ROUTES } from './route-roles.js';

const reason = z.string().trim().min(1).max(1024);
const reasonBody = z.strictObject({ reason });
/** Exactly one selector; `all: true` is the kill switch. */
const bulkBody = z.union([
  z.strictObject({ workload_id: z.string().min(1), reason }),
  z.strictObject({ task: z.string().min(1), reason }),
  z.strictObject({ issuer: z.string().min(1), reason }),
  z.strictObject({ all: z.literal(true), reason }),
]);
const uuid = z.uuid();

function selectorOf(body: z.infer<typeof bulkBody>): GrantSelector {
  if ('workload_id' in body) return { workloadId: body.workload_id };
  if ('task' in body) return { task: body.task };
  if ('issuer' in body) return { issuer: body.issuer };
  return { all: true };
}

/** Admin revocation: one grant, or in bulk (workload, task, issuer, everything). */
export function revocationRoutes(deps: Deps): Router {
  const r = Router();
  mountAdminRoute(r, deps, ADMIN_ROUTES.revokeGrant, async (req, res) => {
    const id = String(req.params.id);
    if (!uuid.safeParse(id).success) throw notFound('Grant');
    const body = parseOrThrow(reasonBody, req.body, 'The revocation');
    const what = { action: ADMIN_ROUTES.revokeGrant.audit, target_type: 'grant', target_id: id };
    const { grant, revoked } = await adminAct(deps, res, what, async (actor) => {
      const done = await revokeGrant(deps.db, id, { actor, reason: body.reason, requestId: res.locals.requestId as string }, deps.clock.now());
      return { result: done, data: { reason: body.reason, revoked: done.revoked.map((g) => g.id) } };
    });
    res.json({
      grant_id: grant.id,
      status: grant.status,
      ended_at: grant.ended_at?.toISOString() ?? null,
      ended_by: grant.ended_by,
      changed: revoked.some((g) => g.id === grant.id),
      revoked: revoked.map((g) => g.id),
    });
  });

  mountAdminRoute(r, deps, ADMIN_ROUTES.revokeGrants, async (req, res) => {
    const body = parseOrThrow(bulkBody, req.body, 'The bulk revocation');
    // Revoking everything is the kill switch: the most powerful role only.
    if ('all' in body && !roleAtLeast(adminOf(res).role, 'admin')) {
      throw new TesseraError(403, 'insufficient_role', 'Revoking every grant needs the admin role.');
    }
    const { reason: why, ...selector } = body;
    const what = { action: ADMIN_ROUTES.revokeGrants.audit, target_type: 'grants', target_id: Object.keys(selector)[0]! };
    const revoked = await adminAct(deps, res, what, async (actor) => {
      const done = await revokeGrants(deps.db, selectorOf(body), { actor, reason: why, requestId: res.locals.requestId as string }, deps.clock.now());
      return { result: done, data: { selector, reason: why, revoked: done.length } };
    });
    res.json({ revoked: revoked.length });
  });
  return r;
}
