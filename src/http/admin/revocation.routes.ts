import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import type { GrantSelector } from '../../grants/grant.repository.js';
import { revokeGrant, revokeGrants } from '../../grants/revocation.service.js';
import { notFound, TesseraError } from '../../lib/errors.js';
import { parseOrThrow } from '../../lib/validation.js';
import { roleAtLeast } from './admin-keys.js';
import { adminOf, requireRole } from './admin-auth.js';
import { jsonBody } from '../body.js';

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
const json = jsonBody('16kb');

function selectorOf(body: z.infer<typeof bulkBody>): GrantSelector {
  if ('workload_id' in body) return { workloadId: body.workload_id };
  if ('task' in body) return { task: body.task };
  if ('issuer' in body) return { issuer: body.issuer };
  return { all: true };
}

/** Admin revocation: one grant, in bulk (workload, task, issuer, everything), and workload suspension. */
export function revocationRoutes(deps: Deps): Router {
  const r = Router();
  const actor = (res: Parameters<typeof adminOf>[0]) => `admin:${adminOf(res).name}`;

  r.post('/grants/:id/revoke', requireRole(deps, 'operator'), json, async (req, res) => {
    if (!uuid.safeParse(req.params.id).success) throw notFound('Grant');
    const body = parseOrThrow(reasonBody, req.body, 'The revocation');
    const { grant, revoked } = await revokeGrant(deps.db, req.params.id as string, { actor: actor(res), reason: body.reason, requestId: res.locals.requestId as string }, deps.clock.now());
    res.json({
      grant_id: grant.id,
      status: grant.status,
      ended_at: grant.ended_at?.toISOString() ?? null,
      ended_by: grant.ended_by,
      changed: revoked.some((g) => g.id === grant.id),
      revoked: revoked.map((g) => g.id),
    });
  });

  r.post('/revocations', requireRole(deps, 'operator'), json, async (req, res) => {
    const body = parseOrThrow(bulkBody, req.body, 'The bulk revocation');
    // Revoking everything is the kill switch: the most powerful role only.
    if ('all' in body && !roleAtLeast(adminOf(res).role, 'admin')) {
      throw new TesseraError(403, 'insufficient_role', 'Revoking every grant needs the admin role.');
    }
    const revoked = await revokeGrants(deps.db, selectorOf(body), { actor: actor(res), reason: body.reason, requestId: res.locals.requestId as string }, deps.clock.now());
    res.json({ revoked: revoked.length });
  });

  return r;
}
