import { Router, type Response } from 'express';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import type { Database } from '../../db/database.js';
import { applyConfigLocked, lockRegistry, readLatestDocument } from '../../config/registry.repository.js';
import { listEntries } from '../../config/registry-entry.repository.js';
import { listWorkloads } from '../../config/workload.repository.js';
import { validateConfig } from '../../config/load-folder.js';
import { policyFile, type ConfigDocument } from '../../config/spec.js';
import { signalTypeSpec } from '../../policy/index.js';
import { signalSourceSpec } from '../../signals/source.spec.js';
import { conflict, notFound } from '../../lib/errors.js';
import { validConfigOr400 } from './config-body.js';
import { parseOrThrow } from '../../lib/validation.js';
import { adminWrite, refreshAfterWrite } from './admin-action.js';
import { mountAdminRoute } from './admin-route.js';
import { pageQuery, paginate } from './pagination.js';
import { ADMIN_ROUTES, type AdminRoute, type AdminWriteRoute } from './route-roles.js';
import { specFromPut } from './spec-body.js';

type Section = 'signal_types' | 'signal_sources' | 'policies';
type Entry = Record<string, unknown>;

interface DocumentEntryApi {
  section: Section;
  key: 'name' | 'id' | 'file';
  noun: string;
  /** The audit events' target_type. */
  target: string;
  /** The entry as PUT: its key comes from the path. */
  schema: z.ZodType;
  /** The list's filters (beside limit and cursor), and whether an entry passes them. */
  filters: z.ZodRawShape;
  matches(entry: Entry, q: Record<string, unknown>): boolean;
  routes: { list: AdminRoute; get: AdminRoute; put: AdminWriteRoute; del: AdminWriteRoute };
}

const text = z.string().min(1).max(256).optional();
const names = (v: unknown) => (Array.isArray(v) ? (v as string[]) : []);

const APIS: DocumentEntryApi[] = [
  {
    section: 'signal_types',
    key: 'name',
    noun: 'signal type',
    target: 'signal_type',
    schema: signalTypeSpec,
    filters: { subject_kind: z.enum(['workload', 'host', 'issuer', 'global']).optional(), source: text },
    matches: (e, q) => (!q.subject_kind || e.subject_kind === q.subject_kind) && (!q.source || names(e.sources).includes(String(q.source))),
    routes: { list: ADMIN_ROUTES.listSignalTypes, get: ADMIN_ROUTES.getSignalType, put: ADMIN_ROUTES.putSignalType, del: ADMIN_ROUTES.deleteSignalType },
  },
  {
    section: 'signal_sources',
    key: 'id',
    noun: 'signal source',
    target: 'signal_source',
    schema: signalSourceSpec,
    filters: { credential: z.enum(['api_key', 'public_keys']).optional() },
    matches: (e, q) => !q.credential || (q.credential === 'api_key' ? e.api_key_sha256 !== undefined : names(e.public_keys).length > 0),
    routes: { list: ADMIN_ROUTES.listSignalSources, get: ADMIN_ROUTES.getSignalSource, put: ADMIN_ROUTES.putSignalSource, del: ADMIN_ROUTES.deleteSignalSource },
  },
  {
    section: 'policies',
    key: 'file',
    noun: 'policy file',
    target: 'policy',
    schema: policyFile,
    // Which files mention a task, a signal or a policy id: a plain substring of the file's text.
    filters: { contains: text },
    matches: (e, q) => !q.contains || String(e.text).includes(String(q.contains)),
    routes: { list: ADMIN_ROUTES.listPolicies, get: ADMIN_ROUTES.getPolicy, put: ADMIN_ROUTES.putPolicy, del: ADMIN_ROUTES.deletePolicy },
  },
];

const MAX_ROWS = Number.MAX_SAFE_INTEGER;

/** One section of the latest applied document, in key order. */
async function entriesOf(db: Database, api: DocumentEntryApi): Promise<Entry[]> {
  const doc = (await readLatestDocument(db)) ?? validateConfig({});
  const key = (e: Entry) => String(e[api.key]);
  return [...(doc[api.section] as Entry[])].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/**
 * The configuration in force, as one document, read in `trx`: issuers, workloads (with their live
 * status) and tasks from the registry tables, the rest from the latest applied document. Read under the
 * registry lock, it is exactly what the edit replaces: no other replica's cached view, no write
 * committed meanwhile, is undone.
 */
async function currentDocument(trx: Database): Promise<ConfigDocument> {
  const latest = (await readLatestDocument(trx)) ?? validateConfig({});
  const issuers = await listEntries(trx, 'issuers', undefined, MAX_ROWS);
  const tasks = await listEntries(trx, 'tasks', undefined, MAX_ROWS);
  const workloads = await listWorkloads(trx, {}, undefined, MAX_ROWS);
  return { ...latest, issuers: issuers.map((e) => e.spec), workloads: workloads.map((w) => ({ ...w.spec, status: w.status })), tasks: tasks.map((e) => e.spec) };
}

/**
 * Changes one entry by applying the current configuration with that entry replaced or removed: the
 * same validation (policies compile against the resulting schema) and versioning as an apply, in one
 * admin write that holds the registry lock from the read to the commit.
 */
async function editEntry(deps: Deps, res: Response, api: DocumentEntryApi, key: string, entry: Entry | undefined, force = false) {
  const route = entry ? api.routes.put : api.routes.del;
  const now = deps.clock.now();
  const done = await adminWrite(deps, res, { action: route.audit, target_type: api.target, target_id: key }, async (trx, actor) => {
    await lockRegistry(trx);
    const doc = await currentDocument(trx);
    const list = doc[api.section] as Entry[];
    const existed = list.some((e) => e[api.key] === key);
    if (!entry && !existed) throw notFound(api.noun);
    const next = { ...doc, [api.section]: [...list.filter((e) => e[api.key] !== key), ...(entry ? [entry] : [])] };
    // Without policy files the broker decides by task lists alone: deleting the last one must be meant.
    if (api.section === 'policies' && !entry && next.policies.length === 0 && !force) {
      throw conflict('Deleting the last policy file would switch the broker from deny-by-default to task lists alone; repeat with ?force=true to do so.', {
        reason: 'last_policy_file',
      });
    }
    const valid = validConfigOr400(next, `The ${api.noun} does not fit the configuration.`);
    const applied = await applyConfigLocked(trx, valid, actor, now);
    return { result: { existed, version: applied.version }, data: { existed, version: applied.version, content_hash: applied.contentHash, ...(entry && { entry }) } };
  });
  await refreshAfterWrite(deps, res.locals.requestId);
  return done;
}

/** Signal types, signal sources and policy files: list (filtered, paginated), get, create/update, delete. */
export function documentEntryRoutes(deps: Deps): Router {
  const r = Router();
  for (const api of APIS) {
    const listQuery = z.strictObject({ ...api.filters, ...pageQuery });
    mountAdminRoute(r, deps, api.routes.list, async (req, res) => {
      const q = parseOrThrow(listQuery, req.query, 'The query') as z.infer<typeof listQuery> & Record<string, unknown>;
      const all = (await entriesOf(deps.db, api)).filter((e) => api.matches(e, q));
      const page = await paginate(q, z.string(), async (after, take) => all.filter((e) => after === undefined || String(e[api.key]) > after).slice(0, take), (e) => String(e[api.key]));
      res.json({ items: page.items, next_cursor: page.next_cursor });
    });
    mountAdminRoute(r, deps, api.routes.get, async (req, res) => {
      const found = (await entriesOf(deps.db, api)).find((e) => e[api.key] === String(req.params.id));
      if (!found) throw notFound(api.noun);
      res.json(found);
    });
    mountAdminRoute(r, deps, api.routes.put, async (req, res) => {
      const entry = specFromPut(req, api.schema, api.key, `The ${api.noun}`) as Entry;
      const { existed, version } = await editEntry(deps, res, api, String(req.params.id), entry);
      res.status(existed ? 200 : 201).json({ ...entry, version });
    });
    mountAdminRoute(r, deps, api.routes.del, async (req, res) => {
      await editEntry(deps, res, api, String(req.params.id), undefined, req.query.force === 'true');
      res.status(204).end();
    });
  }
  return r;
}
