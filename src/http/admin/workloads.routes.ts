import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { ConfigError, validateConfig } from '../../config/load-folder.js';
import { listEntries } from '../../config/registry-entry.repository.js';
import { workloadSpec, type WorkloadSpec } from '../../config/spec.js';
import {
  changeWorkloadStatus,
  findWorkload,
  listWorkloads,
  upsertWorkload,
  WORKLOAD_TRANSITIONS,
  type WorkloadRecord,
  type WorkloadVerb,
} from '../../config/workload.repository.js';
import { revokeActiveGrantsOfWorkload } from '../../grants/revoke-workload-grants.js';
import type { Database } from '../../db/database.js';
import { conflict, invalidRequest, notFound } from '../../lib/errors.js';
import { parseOrThrow } from '../../lib/validation.js';
import { registryWrite } from './registry-write.js';
import { mountAdminRoute } from './admin-route.js';
import { pageQuery, paginate } from './pagination.js';
import { ADMIN_ROUTES } from './route-roles.js';
import { specFromPut } from './spec-body.js';

const CREATED_REASON = 'created through the admin API';

const listQuery = z.strictObject({
  status: z.enum(['active', 'suspended', 'retired']).optional(),
  kind: z.enum(['ci', 'agent', 'service']).optional(),
  owner: z.string().min(1).max(256).optional(),
  ...pageQuery,
});
const reasonBody = z.strictObject({ reason: z.string().trim().min(1, 'say why').max(1024) });

/** The admin view of a workload: explicit fields, live status separate from the spec. */
export function workloadView(w: WorkloadRecord) {
  return {
    id: w.id,
    kind: w.kind,
    owner: w.owner,
    status: w.status,
    status_reason: w.status_reason,
    status_changed_by: w.status_changed_by,
    status_changed_at: w.status_changed_at?.toISOString() ?? null,
    updated_at: w.updated_at.toISOString(),
    spec: w.spec,
  };
}

/**
 * Checks what the spec schema alone cannot: every binding names an existing issuer and every claim
 * pattern compiles. Reuses the configuration validator so the API and `tessera apply` agree.
 */
async function checkReferences(trx: Database, spec: WorkloadSpec): Promise<void> {
  const issuers = (await listEntries(trx, 'issuers', undefined, Number.MAX_SAFE_INTEGER)).map((e) => e.spec);
  try {
    validateConfig({ issuers, workloads: [spec], tasks: [] });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const issues = err.problems.map((p) => {
      const field = p.slice(0, p.indexOf(':'));
      return { field: field.replace(/^workloads\.0\./, ''), reason: p.slice(p.indexOf(':') + 1).trim() };
    });
    throw invalidRequest('The workload is invalid.', issues);
  }
}

/** Workloads: list, read, create or replace a spec, and the lifecycle verbs (suspend, retire, activate). */
export function workloadRoutes(deps: Deps): Router {
  const r = Router();
  mountAdminRoute(r, deps, ADMIN_ROUTES.listWorkloads, async (req, res) => {
    const q = parseOrThrow(listQuery, req.query, 'The query');
    const page = await paginate(q, z.string(), (after, take) => listWorkloads(deps.db, q, after, take), (w) => w.id);
    res.json({ items: page.items.map(workloadView), next_cursor: page.next_cursor });
  });

  mountAdminRoute(r, deps, ADMIN_ROUTES.getWorkload, async (req, res) => {
    const w = await findWorkload(deps.db, String(req.params.id));
    if (!w) throw notFound('Workload');
    res.json(workloadView(w));
  });

  mountAdminRoute(r, deps, ADMIN_ROUTES.putWorkload, async (req, res) => {
    const statusGiven = typeof req.body === 'object' && req.body !== null && 'status' in req.body;
    const spec = specFromPut(req, workloadSpec, 'id', 'The workload');
    const now = deps.clock.now();
    const { created, workload } = await registryWrite(deps, res, { action: ADMIN_ROUTES.putWorkload.audit, target_type: 'workload', target_id: spec.id }, async (trx, actor) => {
      await checkReferences(trx, spec);
      const existing = await findWorkload(trx, spec.id, true);
      // Status changes end grants and need a reason: they go through the lifecycle verbs, not a spec edit.
      if (existing && statusGiven && existing.status !== spec.status) {
        throw conflict(`The workload is ${existing.status}; change its status with /suspend, /retire or /activate.`, { status: existing.status });
      }
      const result = await upsertWorkload(trx, spec, actor, CREATED_REASON, now);
      return { result, data: { created: result.created, spec } };
    });
    res.status(created ? 201 : 200).json(workloadView(workload));
  });

  for (const verb of Object.keys(WORKLOAD_TRANSITIONS) as WorkloadVerb[]) {
    const route = { suspend: ADMIN_ROUTES.suspendWorkload, retire: ADMIN_ROUTES.retireWorkload, activate: ADMIN_ROUTES.activateWorkload }[verb];
    mountAdminRoute(r, deps, route, async (req, res) => {
      const id = String(req.params.id);
      const { reason } = parseOrThrow(reasonBody, req.body, 'The request');
      const t = WORKLOAD_TRANSITIONS[verb];
      const now = deps.clock.now();
      const done = await registryWrite(deps, res, { action: route.audit, target_type: 'workload', target_id: id }, async (trx, actor) => {
        const workload = await changeWorkloadStatus(trx, id, { to: t.to, from: t.from, reason, actor, at: now });
        if (!workload) {
          const current = await findWorkload(trx, id);
          if (!current) throw notFound('Workload');
          throw conflict(`The workload is ${current.status}; it cannot ${verb} from there.`, { status: current.status });
        }
        const revoked = t.endsGrants ? await revokeActiveGrantsOfWorkload(trx, id, actor, reason, now) : [];
        return { result: { workload, revoked }, data: { reason, status: t.to, revoked_grants: revoked } };
      });
      res.json({ ...workloadView(done.workload), revoked_grants: done.revoked.length });
    });
  }
  return r;
}
