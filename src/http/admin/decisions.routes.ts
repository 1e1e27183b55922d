import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { findDecision, type DecisionRow } from '../../decisions/decision.repository.js';
import { decisionPageKey, listDecisions } from '../../decisions/decision-query.js';
import { evaluateWhatIf } from '../../decisions/what-if.js';
import { notFound } from '../../lib/errors.js';
import { parseOrThrow } from '../../lib/validation.js';
import { mountAdminRoute } from './admin-route.js';
import { createdAtCursor, pageQuery, paginate } from './pagination.js';
import { ADMIN_ROUTES } from './route-roles.js';

const listQuery = z.strictObject({
  workload: z.string().min(1).max(256).optional(),
  task: z.string().min(1).max(256).optional(),
  outcome: z.enum(['allow', 'step_up', 'deny']).optional(),
  ...pageQuery,
});

/** The whole decision, as an admin sees it (the workload sees only outcome, reasons and id). */
export function decisionView(d: DecisionRow) {
  return {
    id: d.id,
    created_at: d.created_at.toISOString(),
    request_id: d.request_id,
    workload: d.workload_id,
    task: d.task,
    outcome: d.outcome,
    reasons: d.reasons,
    errors: d.errors,
    determining_policies: d.determining,
    policy_version: d.policy_version,
    config_version: d.config_version,
    request: d.request,
    signals: d.signals,
    ttl_seconds: d.ttl_seconds,
    max_ttl_seconds: d.max_ttl_seconds,
    latency_us: d.latency_us,
    grant_id: d.grant_id,
  };
}

/** Decisions: list, read in full, and evaluate hypothetically. */
export function decisionRoutes(deps: Deps): Router {
  const r = Router();
  mountAdminRoute(r, deps, ADMIN_ROUTES.listDecisions, async (req, res) => {
    const q = parseOrThrow(listQuery, req.query, 'The query');
    const page = await paginate(q, createdAtCursor, (after, take) => listDecisions(deps.db, q, after, take), decisionPageKey);
    res.json({ items: page.items.map(decisionView), next_cursor: page.next_cursor });
  });
  mountAdminRoute(r, deps, ADMIN_ROUTES.getDecision, async (req, res) => {
    const d = z.uuid().safeParse(req.params.id).success ? await findDecision(deps.db, String(req.params.id)) : undefined;
    if (!d) throw notFound('Decision');
    res.json({
      ...decisionView(d),
      config: { version: d.config_version, applied_by: d.config_applied_by, applied_at: d.config_applied_at?.toISOString() ?? null, policy_version: d.config_policy_version },
    });
  });
  mountAdminRoute(r, deps, ADMIN_ROUTES.evaluateDecision, async (req, res) => {
    res.json(await evaluateWhatIf(deps.registry.snapshot, req.body));
  });
  return r;
}
