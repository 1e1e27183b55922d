import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { findGrant, type GrantRow } from '../../grants/grant.repository.js';
import { grantPageKey, listGrants } from '../../grants/grant-query.js';
import { notFound } from '../../lib/errors.js';
import { parseOrThrow } from '../../lib/validation.js';
import { mountAdminRoute } from './admin-route.js';
import { pageQuery, paginate } from './pagination.js';
import { ADMIN_ROUTES } from './route-roles.js';

const listQuery = z.strictObject({
  workload: z.string().min(1).max(256).optional(),
  task: z.string().min(1).max(256).optional(),
  status: z.enum(['active', 'expired', 'completed', 'revoked']).optional(),
  /** `active=true`: only grants usable now (active and not yet past their expiry). */
  active: z.enum(['true', 'false']).optional(),
  ...pageQuery,
});
const pageKey = z.strictObject({ issued_at: z.iso.datetime(), id: z.uuid() });
const grantId = z.uuid();

/** The admin view of a grant. Explicit fields: never the token's hash, never the identity token's. */
export function grantView(g: GrantRow) {
  const identity = g.identity as { method?: string; issuer?: string; subject?: string };
  return {
    id: g.id,
    workload_id: g.workload_id,
    task: g.task,
    params: g.params,
    scopes: g.scopes,
    audience: g.audience,
    purpose: g.purpose,
    status: g.status,
    issued_at: g.issued_at.toISOString(),
    expires_at: g.expires_at.toISOString(),
    ended_at: g.ended_at?.toISOString() ?? null,
    ended_by: g.ended_by,
    end_reason: g.end_reason,
    decision_id: g.decision_id,
    approval_id: g.approval_id,
    parent_id: g.parent_id,
    use_count: g.use_count,
    max_uses: g.max_uses,
    cnf_jkt: g.cnf_jkt,
    kid: g.kid,
    identity: { method: identity.method ?? null, issuer: identity.issuer ?? null, subject: identity.subject ?? null },
  };
}

/** Grants, read-only: list with filters and read one. */
export function adminGrantRoutes(deps: Deps): Router {
  const r = Router();
  mountAdminRoute(r, deps, ADMIN_ROUTES.listGrants, async (req, res) => {
    const q = parseOrThrow(listQuery, req.query, 'The query');
    const filter = { workload: q.workload, task: q.task, status: q.status, activeAt: q.active === 'true' ? deps.clock.now() : undefined };
    const page = await paginate(q, pageKey, (after, take) => listGrants(deps.db, filter, after, take), grantPageKey);
    res.json({ items: page.items.map(grantView), next_cursor: page.next_cursor });
  });

  mountAdminRoute(r, deps, ADMIN_ROUTES.getGrant, async (req, res) => {
    const id = String(req.params.id);
    const g = grantId.safeParse(id).success ? await findGrant(deps.db, id) : undefined;
    if (!g) throw notFound('Grant');
    res.json(grantView(g));
  });
  return r;
}
