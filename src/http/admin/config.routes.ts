import { Router, type Response } from 'express';
import type { Deps } from '../../deps.js';
import { applyConfigLocked, configAuditData, configHash, listConfigVersions, lockRegistry, readConfigVersionDocument } from '../../config/registry.repository.js';
import type { ConfigDocument } from '../../config/spec.js';
import { notFound } from '../../lib/errors.js';
import { validConfigOr400 } from './config-body.js';
import { reevaluateActiveGrants } from '../../grants/reevaluate.js';
import { grantReevaluator } from '../../decisions/reevaluation.js';
import { adminAct, adminWrite, refreshAfterWrite } from './admin-action.js';
import { mountAdminRoute } from './admin-route.js';
import { BIGINT_TEXT } from './pagination.js';
import { ADMIN_ROUTES } from './route-roles.js';

/** Applies `doc` as one version under the registry lock, audited as this admin request, then reloads this replica. */
async function applyAudited(deps: Deps, res: Response, action: string, doc: ConfigDocument, data: Record<string, unknown> = {}) {
  const now = deps.clock.now();
  const result = await adminWrite(deps, res, { action, target_type: 'config_version', target_id: '' }, async (trx, actor) => {
    await lockRegistry(trx);
    const applied = await applyConfigLocked(trx, doc, actor, now);
    return { result: applied, target_id: applied.version, data: { ...data, ...configAuditData(doc, applied), changed: applied.changed } };
  });
  await refreshAfterWrite(deps, res.locals.requestId);
  return result;
}

/** Configuration as one document: apply (what `tessera apply <dir>` calls), versions, restore; re-evaluation after a change. */
export function configRoutes(deps: Deps): Router {
  const r = Router();
  mountAdminRoute(r, deps, ADMIN_ROUTES.applyConfig, async (req, res) => {
    const doc = validConfigOr400(req.body, 'The configuration is invalid.');
    if (req.query.dry_run === 'true') {
      res.json({ dry_run: true, content_hash: configHash(doc), issuers: doc.issuers.length, workloads: doc.workloads.length, tasks: doc.tasks.length });
      return;
    }
    const result = await applyAudited(deps, res, ADMIN_ROUTES.applyConfig.audit, doc);
    res.status(result.changed ? 201 : 200).json({ version: result.version, changed: result.changed, content_hash: result.contentHash });
  });

  mountAdminRoute(r, deps, ADMIN_ROUTES.listConfigVersions, async (_req, res) => {
    const rows = await listConfigVersions(deps.db);
    res.json({
      items: rows.map((v) => ({
        version: v.id,
        content_hash: v.content_hash,
        policy_version: v.policy_version,
        applied_by: v.applied_by,
        applied_at: v.applied_at.toISOString(),
        summary: v.summary,
      })),
    });
  });

  // Restoring re-applies an earlier document as a new version: history only grows.
  mountAdminRoute(r, deps, ADMIN_ROUTES.restoreConfigVersion, async (req, res) => {
    const version = String(req.params.version);
    const doc = BIGINT_TEXT.test(version) ? await readConfigVersionDocument(deps.db, version) : undefined;
    if (!doc) throw notFound('Configuration version');
    // A stored document may no longer validate (a newer broker's rules, an issuer since removed).
    const valid = validConfigOr400(doc, `Configuration version ${version} can no longer be applied.`);
    const result = await applyAudited(deps, res, ADMIN_ROUTES.restoreConfigVersion.audit, valid, { restored_from: version });
    res.status(result.changed ? 201 : 200).json({ version: result.version, changed: result.changed, restored_from: version, content_hash: result.contentHash });
  });

  // After a new policy version: show what re-evaluating every active grant would revoke (dry_run=true),
  // then do it. Revocations carry the new decision that refused them.
  mountAdminRoute(r, deps, ADMIN_ROUTES.reevaluateGrants, async (req, res) => {
    const dryRun = req.query.dry_run === 'true';
    const result = await adminAct(deps, res, { action: ADMIN_ROUTES.reevaluateGrants.audit, target_type: 'grants', target_id: 'active' }, async (actor) => {
      const done = await reevaluateActiveGrants(deps, {}, grantReevaluator(deps), deps.clock.now(), { dryRun, actor });
      return { result: done, data: { dry_run: dryRun, evaluated: done.evaluated, revoked: done.revoked.length, failed: done.failed.length } };
    });
    res.json(result);
  });
  return r;
}
