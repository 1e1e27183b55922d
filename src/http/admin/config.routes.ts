import { Router } from 'express';
import type { Deps } from '../../deps.js';
import { applyConfigDocument, configHash, listConfigVersions, readConfigVersionDocument } from '../../config/registry.repository.js';
import { ConfigError, validateConfig } from '../../config/load-folder.js';
import { invalidRequest, notFound } from '../../lib/errors.js';
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
    let doc;
    try {
      doc = validateConfig(req.body);
    } catch (err) {
      if (err instanceof ConfigError) {
        throw invalidRequest('The configuration is invalid.', err.problems.map((p) => ({ field: p.split(':')[0]!, reason: p.slice(p.indexOf(':') + 1).trim() })));
      }
      throw err;
    }
    if (req.query.dry_run === 'true') {
      res.json({ dry_run: true, content_hash: configHash(doc), issuers: doc.issuers.length, workloads: doc.workloads.length, tasks: doc.tasks.length });
      return;
    }
    const result = await applyConfigDocument(deps.db, doc, `admin:${adminOf(res).name}`, deps.clock.now(), res.locals.requestId as string);
    await deps.registry.refreshIfChanged();
    res.status(result.changed ? 201 : 200).json({ version: result.version, changed: result.changed, content_hash: result.contentHash });
  });

  r.get('/config/versions', requireRole(deps, 'viewer'), async (_req, res) => {
    const rows = await listConfigVersions(deps.db);
    res.json({
      items: rows.map((v) => ({ version: v.id, content_hash: v.content_hash, applied_by: v.applied_by, applied_at: v.applied_at.toISOString(), summary: v.summary })),
    });
  });

  // Restoring re-applies an earlier document as a new version: history only grows.
  r.post('/config/versions/:version/restore', requireRole(deps, 'operator'), async (req, res) => {
    const version = String(req.params.version);
    const doc = /^\d+$/.test(version) ? await readConfigVersionDocument(deps.db, version) : undefined;
    if (!doc) throw notFound('Configuration version');
    const result = await applyConfigDocument(deps.db, validateConfig(doc), `admin:${adminOf(res).name}`, deps.clock.now(), res.locals.requestId as string);
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
