import { Router, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { exportAuditEvents, listAuditEvents } from '../../audit/audit.repository.js';
import { purgeAuditLog } from '../../audit/audit-retention.js';
import { verifyAuditChain, type AuditChainVerification } from '../../audit/verify-chain.js';
import { grantTrail } from '../../audit/grant-trail.js';
import { invalidRequest, notFound } from '../../lib/errors.js';
import { parseOrThrow } from '../../lib/validation.js';
import { toTesseraError } from '../errors.js';
import { actorOf } from './admin-action.js';
import { mountAdminRoute } from './admin-route.js';
import { BIGINT_TEXT } from './pagination.js';
import { ADMIN_ROUTES } from './route-roles.js';

const since = z.iso.datetime({ offset: true }).transform((s) => new Date(s)).optional();
const seq = z.string().regex(BIGINT_TEXT, 'a sequence number, as next_after_seq or an export printed it');
const eventsQuery = z.strictObject({
  target_type: z.string().optional(),
  target_id: z.string().optional(),
  after_seq: seq.optional(),
  since,
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
const verifyQuery = z.strictObject({
  expect_head: z
    .string()
    .regex(/^\d+:[0-9a-f]{64}$/, 'must be <seq>:<hash>, as a verify printed it')
    .transform((h) => ({ seq: h.slice(0, h.indexOf(':')), hash: h.slice(h.indexOf(':') + 1) }))
    .optional(),
});
const purgeBody = z.strictObject({ before: z.iso.datetime({ offset: true }).transform((s) => new Date(s)) });

const ndjson = (res: Response) => res.status(200).type('application/x-ndjson').setHeader('Cache-Control', 'no-store');
const wantsStream = (req: Request) => req.accepts(['application/json', 'application/x-ndjson']) === 'application/x-ndjson';

/**
 * Runs a long admin operation, answering JSON lines: `{"progress":…}` as it goes, which keeps a
 * client's idle timer from firing however long it runs, then one `{"result":…}` or `{"error":…}`. The
 * status is sent before the outcome is known, so the last line, not the status, says how it ended.
 */
async function streamed(res: Response, log: Logger, run: (progress: (p: Record<string, unknown>) => void) => Promise<unknown>): Promise<void> {
  ndjson(res).flushHeaders();
  try {
    const result = await run((p) => void res.write(`${JSON.stringify({ progress: p })}\n`));
    res.end(`${JSON.stringify({ result })}\n`);
  } catch (err) {
    const te = toTesseraError(err);
    log.error({ req_id: res.locals.requestId, err: te.cause ?? te }, 'streamed audit operation failed');
    res.end(`${JSON.stringify({ error: { status: te.status, code: te.code, detail: te.message } })}\n`);
  }
}

const verificationBody = (r: AuditChainVerification) =>
  r.ok
    ? { ok: true, count: r.count, head: r.head, ...(r.checkpoint && { checkpoint: r.checkpoint }) }
    : { ok: false, count: r.count, broken_at: r.brokenAt, reason: r.reason, ...(r.table && { table: r.table, id: r.id }) };

/** The audit trail: chain verification, retention, export for a SIEM, events, and the whole story of one grant. */
export function auditRoutes(deps: Deps): Router {
  const r = Router();
  mountAdminRoute(r, deps, ADMIN_ROUTES.verifyAudit, async (req, res) => {
    const q = parseOrThrow(verifyQuery, req.query, 'The query');
    await deps.audit.flush();
    if (wantsStream(req)) {
      await streamed(res, deps.log, async (progress) =>
        verificationBody(await verifyAuditChain(deps.db, { expectHead: q.expect_head, now: deps.clock.now(), onProgress: (checked, total) => progress({ checked, total }) })),
      );
      return;
    }
    const body = verificationBody(await verifyAuditChain(deps.db, { expectHead: q.expect_head, now: deps.clock.now() }));
    res.status(body.ok ? 200 : 409).json(body);
  });

  // Retention is an admin's decision and is itself on the chain (an audit.purged event per batch).
  mountAdminRoute(r, deps, ADMIN_ROUTES.purgeAudit, async (req, res) => {
    const { before } = parseOrThrow(purgeBody, req.body, 'The purge');
    const now = deps.clock.now();
    if (before > now) throw invalidRequest('The purge is invalid.', [{ field: 'before', reason: 'must not be in the future' }]);
    await deps.audit.flush();
    const run = (onBatch?: Parameters<typeof purgeAuditLog>[5]) => purgeAuditLog(deps.db, before, actorOf(res), now, String(res.locals.requestId), onBatch);
    const body = (r: Awaited<ReturnType<typeof run>>) => ({ purged: r.purged, through_seq: r.through?.seq ?? null, events: r.events.map((e) => e.seq) });
    if (wantsStream(req)) {
      await streamed(res, deps.log, async (progress) => body(await run((r) => progress({ purged: r.purged }))));
      return;
    }
    res.json(body(await run()));
  });

  mountAdminRoute(r, deps, ADMIN_ROUTES.listAuditEvents, async (req, res) => {
    const q = parseOrThrow(eventsQuery, req.query, 'The query');
    await deps.audit.flush();
    const items = await listAuditEvents(deps.db, { targetType: q.target_type, targetId: q.target_id, afterSeq: q.after_seq, since: q.since, limit: q.limit });
    res.json({ items, next_after_seq: items.length === q.limit ? items[items.length - 1]!.seq : null });
  });

  // JSON lines, streamed in seq order. A SIEM resumes with ?after_seq= (the last seq it stored): `at`
  // comes from each replica's clock and an event may be sealed after later ones, so ?since= can skip.
  mountAdminRoute(r, deps, ADMIN_ROUTES.exportAudit, async (req, res) => {
    const q = parseOrThrow(z.strictObject({ since, after_seq: seq.optional() }), req.query, 'The query');
    await deps.audit.flush();
    ndjson(res);
    await exportAuditEvents(deps.db, { since: q.since, afterSeq: q.after_seq }, (line) => {
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
