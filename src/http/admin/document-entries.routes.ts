import { Router, type Response } from 'express';
import type { z } from 'zod';
import type { Deps } from '../../deps.js';
import { applyConfigDocument, readLatestDocument } from '../../config/registry.repository.js';
import { ConfigError, validateConfig } from '../../config/load-folder.js';
import { policyFile, type ConfigDocument } from '../../config/spec.js';
import { signalTypeSpec } from '../../policy/index.js';
import { signalSourceSpec } from '../../signals/source.spec.js';
import { invalidRequest, notFound } from '../../lib/errors.js';
import { parseOrThrow } from '../../lib/validation.js';
import { actorOf, refreshAfterWrite } from './admin-action.js';
import { mountAdminRoute } from './admin-route.js';
import { ADMIN_ROUTES, type AdminRoute } from './route-roles.js';

type Section = 'signal_types' | 'signal_sources' | 'policies';

interface DocumentEntryApi {
  section: Section;
  key: 'name' | 'id' | 'file';
  noun: string;
  /** The entry as PUT: its key comes from the path. */
  schema: z.ZodType;
  routes: { list: AdminRoute; get: AdminRoute; put: AdminRoute; del: AdminRoute };
}

const APIS: DocumentEntryApi[] = [
  { section: 'signal_types', key: 'name', noun: 'signal type', schema: signalTypeSpec, routes: { list: ADMIN_ROUTES.listSignalTypes, get: ADMIN_ROUTES.getSignalType, put: ADMIN_ROUTES.putSignalType, del: ADMIN_ROUTES.deleteSignalType } },
  { section: 'signal_sources', key: 'id', noun: 'signal source', schema: signalSourceSpec, routes: { list: ADMIN_ROUTES.listSignalSources, get: ADMIN_ROUTES.getSignalSource, put: ADMIN_ROUTES.putSignalSource, del: ADMIN_ROUTES.deleteSignalSource } },
  { section: 'policies', key: 'file', noun: 'policy file', schema: policyFile, routes: { list: ADMIN_ROUTES.listPolicies, get: ADMIN_ROUTES.getPolicy, put: ADMIN_ROUTES.putPolicy, del: ADMIN_ROUTES.deletePolicy } },
];

/**
 * The configuration in force, as one document: issuers, workloads (with their live status) and tasks
 * from the registry tables, the rest from the latest applied document.
 */
async function currentDocument(deps: Deps): Promise<ConfigDocument> {
  const snap = deps.registry.snapshot;
  const latest = (await readLatestDocument(deps.db)) ?? validateConfig({});
  return {
    ...latest,
    issuers: [...snap.issuers.values()],
    workloads: [...snap.workloads.values()].map((w) => ({ ...w.spec, status: w.status })),
    tasks: [...snap.tasks.values()].map((t) => t.spec),
  };
}

/**
 * Changes one entry by applying the current configuration with that entry replaced or removed: the
 * same validation (policies compile against the resulting schema), versioning and audit as an apply.
 */
async function editEntry(deps: Deps, res: Response, api: DocumentEntryApi, key: string, entry: Record<string, unknown> | undefined) {
  const doc = await currentDocument(deps);
  const list = doc[api.section] as Array<Record<string, unknown>>;
  const existed = list.some((e) => e[api.key] === key);
  if (!entry && !existed) throw notFound(api.noun);
  const next = { ...doc, [api.section]: [...list.filter((e) => e[api.key] !== key), ...(entry ? [entry] : [])] };
  let valid: ConfigDocument;
  try {
    valid = validateConfig(next);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw invalidRequest(`The ${api.noun} does not fit the configuration.`, err.problems.map((p) => ({ field: p.split(':')[0]!, reason: p.slice(p.indexOf(':') + 1).trim() })));
  }
  const result = await applyConfigDocument(deps.db, valid, actorOf(res), deps.clock.now(), res.locals.requestId as string);
  await refreshAfterWrite(deps, res.locals.requestId);
  return { existed, version: result.version };
}

/** Signal types, signal sources and policy files: list, get, create/update, delete. */
export function documentEntryRoutes(deps: Deps): Router {
  const r = Router();
  for (const api of APIS) {
    const entries = async () => (await currentDocument(deps))[api.section] as Array<Record<string, unknown>>;
    mountAdminRoute(r, deps, api.routes.list, async (_req, res) => {
      res.json({ items: await entries() });
    });
    mountAdminRoute(r, deps, api.routes.get, async (req, res) => {
      const found = (await entries()).find((e) => e[api.key] === String(req.params.id));
      if (!found) throw notFound(api.noun);
      res.json(found);
    });
    mountAdminRoute(r, deps, api.routes.put, async (req, res) => {
      const key = String(req.params.id);
      const body = req.body && typeof req.body === 'object' ? req.body : {};
      if (api.key in body && body[api.key] !== key) throw invalidRequest('The key differs from the path.', [{ field: api.key, reason: `must be "${key}" or absent` }]);
      const entry = parseOrThrow(api.schema, { ...body, [api.key]: key }, `The ${api.noun}`) as Record<string, unknown>;
      const { existed, version } = await editEntry(deps, res, api, key, entry);
      res.status(existed ? 200 : 201).json({ ...entry, version });
    });
    mountAdminRoute(r, deps, api.routes.del, async (req, res) => {
      await editEntry(deps, res, api, String(req.params.id), undefined);
      res.status(204).end();
    });
  }
  return r;
}
