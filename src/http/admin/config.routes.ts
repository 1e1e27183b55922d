import { Router } from 'express';
import type { Deps } from '../../deps.js';
import { applyConfigDocument, configHash, listConfigVersions, readConfigVersionDocument } from '../../config/registry.repository.js';
import { notFound } from '../../lib/errors.js';
import { validConfigOr400 } from './config-body.js';
import { reevaluateActiveGrants } from '../../grants/reevaluate.js';
import { grantReevaluator } from '../../decisions/reevaluation.js';
import { adminOf, requireRole } from './admin-auth.js';
import { jsonBody } from '../body.js';

/** Configuration documents can be large (many workloads and policies). */
const CONFIG_BODY_LIMIT = '2mb';

/** Applies a configuration document as one version (what `tessera apply <dir>` calls). */
export function configRoutes(deps: Deps): Router {
  const r = Router();
  r.post('/config', requireRole(deps, 'operator'), jsonBody(CONFIG_BODY_LIMIT), async (req, res) => {
    const doc = validConfigOr400(req.body, 'The configuration is invalid.');
    if (req.query.dry_run === 'true') {
      res.json({ dry_run: true, content_hash: configHash(doc), issuers: doc.issuers.length, workloads: doc.workloads.length, tasks: doc.tasks.length });
      return;
    }
    const result = await applyConfigDocument(deps.db, doc, `admin:${adminOf(res).name}`, deps.clock.now());
    await deps.registry.refreshIfChanged();
    res.status(result.changed ? 201 : 200).json({ version: result.version, changed: result.changed, content_hash: result.contentHash });
  });

  r.get('/config/versions', requireRole(deps, 'viewer'), async (_req, res) => {
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
  r.post('/config/versions/:version/restore', requireRole(deps, 'operator'), async (req, res) => {
    const version = String(req.params.version);
    const doc = /^\d+$/.test(version) ? await readConfigVersionDocument(deps.db, version) : undefined;
    if (!doc) throw notFound('Configuration version');
    // A stored document may no longer validate (a newer broker's rules, an issuer since removed).
    const valid = validConfigOr400(doc, `Configuration version ${version} can no longer be applied.`);
    const result = await applyConfigDocument(deps.db, valid, `admin:${adminOf(res).name}`, deps.clock.now());
    await deps.registry.refreshIfChanged();
    res.status(result.changed ? 201 : 200).json({ version: result.version, changed: result.changed, restored_from: version, content_hash: result.contentHash });
  });

  // After a new policy version: show what re-evaluating every active grant would revoke (dry_run=true),
  // then do it. Revocations carry the new decision that refused them.
  r.post('/grants\\:reevaluate', requireRole(deps, 'operator'), async (req, res) => {
    const dryRun = req.query.dry_run === 'true';
    const result = await reevaluateActiveGrants(deps, {}, grantReevaluator(deps), deps.clock.now(), { dryRun, actor: `admin:${adminOf(res).name}` });
    res.json(result);
  });
  return r;
}
