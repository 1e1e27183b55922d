import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { exportAuditEvents, listAuditEvents } from '../../audit/audit.repository.js';
import { verifyAuditChain } from '../../audit/verify-chain.js';
import { grantTrail } from '../../audit/grant-trail.js';
import { notFound } from '../../lib/errors.js';
import { parseOrThrow } from '../../lib/validation.js';
import { mountAdminRoute } from './admin-route.js';
import { BIGINT_TEXT } from './pagination.js';
import { ADMIN_ROUTES } from './route-roles.js';

const since = z.iso.datetime({ offset: true }).transform((s) => new Date(s)).optional();
const eventsQuery = z.strictObject({
  target_type: z.string().optional(),
  target_id: z.string().optional(),
  after_seq: z.string().regex(BIGINT_TEXT, 'a sequence number from next_after_seq').optional(),
  since,
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/** The audit trail: chain verification, export for a SIEM, events, and the whole story of one grant. */
export function auditRoutes(deps: Deps): Router {
  const r = Router();
  mountAdminRoute(r, deps, ADMIN_ROUTES.verifyAudit, async (_req, res) => {
    await deps.audit.flush();
    const result = await verifyAuditChain(deps.db);
    res.status(result.ok ? 200 : 409).json(result.ok ? { ok: true, count: result.count } : { ok: false, count: result.count, broken_at: result.brokenAt, reason: result.reason });
  });

  mountAdminRoute(r, deps, ADMIN_ROUTES.listAuditEvents, async (req, res) => {
    const q = parseOrThrow(eventsQuery, req.query, 'The query');
    await deps.audit.flush();
    const items = await listAuditEvents(deps.db, { targetType: q.target_type, targetId: q.target_id, afterSeq: q.after_seq, since: q.since, limit: q.limit });
    res.json({ items, next_after_seq: items.length === q.limit ? items[items.length - 1]!.seq : null });
  });

  // JSON lines, streamed in seq order; a SIEM can resume with ?since=.
  mountAdminRoute(r, deps, ADMIN_ROUTES.exportAudit, async (req, res) => {
    const q = parseOrThrow(z.strictObject({ since }), req.query, 'The query');
    await deps.audit.flush();
    res.type('application/x-ndjson').setHeader('Cache-Control', 'no-store');
    await exportAuditEvents(deps.db, { since: q.since }, (line) => {
      if (!res.write(line)) return new Promise<void>((resolve) => res.once('drain', () => resolve()));
    });
    res.end();
  });

  mountAdminRoute(r, deps, ADMIN_ROUTES.grantTrail, async (req, res) => {
    const id = String(req.params.id);
    if (!z.uuid().safeParse(id).success) throw notFound('Grant');
    await deps.audit.flush();
    const trail = await grantTrail(deps.db, id);
    if (!trail) throw notFound('Grant');
    res.json(trail);
  });
  return r;
}
