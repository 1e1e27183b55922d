import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import type { Database } from '../../db/database.js';
import { deleteEntry, findEntry, listEntries, upsertEntry, type EntryFilter, type EntryKind, type RegistryEntry } from '../../config/registry-entry.repository.js';
import { issuerSpec, taskSpec, type TaskSpec } from '../../config/spec.js';
import { workloadsBoundTo } from '../../config/workload.repository.js';
import { conflict, invalidRequest, notFound } from '../../lib/errors.js';
import { parseOrThrow } from '../../lib/validation.js';
import { registryWrite } from './registry-write.js';
import { mountAdminRoute } from './admin-route.js';
import { pageQuery, paginate } from './pagination.js';
import { ADMIN_ROUTES, type AdminRoute, type AdminWriteRoute } from './route-roles.js';
import { specFromPut } from './spec-body.js';


interface EntryApi {
  kind: EntryKind;
  /** Singular, for messages and audit actions. */
  noun: 'issuer' | 'task';
  keyField: 'id' | 'name';
  schema: z.ZodType;
  /** The list's filters beside limit and cursor, and how they narrow the query. */
  filters: z.ZodRawShape;
  filterOf(q: Record<string, string | undefined>): EntryFilter;
  routes: { list: AdminRoute; get: AdminRoute; put: AdminWriteRoute; del: AdminWriteRoute };
  /** Refuses a spec the registry could not compile (which would stop every replica's reload). */
  check?(spec: unknown): void;
  /** Refuses a delete that would leave the registry inconsistent. */
  beforeDelete?(trx: Database, key: string): Promise<void>;
}

const ENTRY_APIS: EntryApi[] = [
  {
    kind: 'issuers',
    noun: 'issuer',
    keyField: 'id',
    schema: issuerSpec,
    filters: { kind: z.enum(['oidc', 'spiffe']).optional() },
    filterOf: (q) => ({ spec: { kind: q.kind } }),
    routes: { list: ADMIN_ROUTES.listIssuers, get: ADMIN_ROUTES.getIssuer, put: ADMIN_ROUTES.putIssuer, del: ADMIN_ROUTES.deleteIssuer },
    async beforeDelete(trx, key) {
      const bound = await workloadsBoundTo(trx, key);
      if (bound.length) throw conflict(`Workloads are bound to issuer ${key}; change their bindings first.`, { workloads: bound });
    },
  },
  {
    kind: 'tasks',
    noun: 'task',
    keyField: 'name',
    schema: taskSpec,
    filters: { risk: z.enum(['low', 'medium', 'high']).optional(), workload: z.string().min(1).max(256).optional() },
    filterOf: (q) => ({ spec: { risk: q.risk }, workload: q.workload }),
    routes: { list: ADMIN_ROUTES.listTasks, get: ADMIN_ROUTES.getTask, put: ADMIN_ROUTES.putTask, del: ADMIN_ROUTES.deleteTask },
    check(spec) {
      const task = spec as TaskSpec;
      for (const [name, param] of Object.entries(task.params)) {
        if (param.type !== 'string' || param.pattern === undefined) continue;
        try {
          new RegExp(param.pattern);
        } catch {
          throw invalidRequest('The task is invalid.', [{ field: `params.${name}.pattern`, reason: 'not a valid regular expression' }]);
        }
      }
    },
  },
];

const entryView = (api: EntryApi, e: RegistryEntry<unknown>) => ({ [api.keyField]: e.key, updated_at: e.updated_at.toISOString(), spec: e.spec });
const capitalised = (s: string) => s[0]!.toUpperCase() + s.slice(1);

/** Issuers and tasks: list, read, create or replace one spec, delete. */
export function registryEntryRoutes(deps: Deps): Router {
  const r = Router();
  for (const api of ENTRY_APIS) {
    const What = capitalised(api.noun);
    const listQuery = z.strictObject({ ...api.filters, ...pageQuery });
    mountAdminRoute(r, deps, api.routes.list, async (req, res) => {
      const q = parseOrThrow(listQuery, req.query, 'The query') as z.infer<typeof listQuery> & Record<string, string | undefined>;
      const filter = api.filterOf(q);
      const page = await paginate(q, z.string(), (after, take) => listEntries(deps.db, api.kind, after, take, filter), (e) => e.key);
      res.json({ items: page.items.map((e) => entryView(api, e)), next_cursor: page.next_cursor });
    });

    mountAdminRoute(r, deps, api.routes.get, async (req, res) => {
      const e = await findEntry(deps.db, api.kind, String(req.params.id));
      if (!e) throw notFound(What);
      res.json(entryView(api, e));
    });

    mountAdminRoute(r, deps, api.routes.put, async (req, res) => {
      // An api entry's schema and kind belong together; the cast only tells the compiler so.
      const spec = specFromPut(req, api.schema, api.keyField, `The ${api.noun}`) as never;
      api.check?.(spec);
      const key = String(req.params.id);
      const now = deps.clock.now();
      const created = await registryWrite(deps, res, { action: api.routes.put.audit, target_type: api.noun, target_id: key }, async (trx) => {
        const result = await upsertEntry(trx, api.kind, key, spec, now);
        return { result: result.created, data: { created: result.created, spec } };
      });
      res.status(created ? 201 : 200).json(entryView(api, { key, spec, updated_at: now }));
    });

    mountAdminRoute(r, deps, api.routes.del, async (req, res) => {
      const key = String(req.params.id);
      await registryWrite(deps, res, { action: api.routes.del.audit, target_type: api.noun, target_id: key }, async (trx) => {
        await api.beforeDelete?.(trx, key);
        if (!(await deleteEntry(trx, api.kind, key))) throw notFound(What);
        return { result: undefined };
      });
      res.status(204).end();
    });
  }
  return r;
}
