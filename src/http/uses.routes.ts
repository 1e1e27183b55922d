import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../deps.js';
import { findGrant } from '../grants/grant.repository.js';
import { recordGrantUse } from '../grants/grant-use.js';
import { conflict, notFound } from '../lib/errors.js';
import { parseOrThrow } from '../lib/validation.js';
import { jsonBody } from './body.js';
import { resourceServerOf } from './resource-server-auth.js';

const useReport = z.strictObject({
  tool: z.string().min(1).max(128).optional(),
  target: z.string().min(1).max(512).optional(),
  result: z.enum(['success', 'failure', 'denied']).default('success'),
});

/**
 * POST /v1/grants/{id}/uses: a resource server reports what it did with a token (tool, target, result),
 * so approval → decision → token → uses read as one chain. Max uses is enforced here as in introspection.
 */
export function useRoutes(deps: Deps): Router {
  const r = Router();
  r.post(
    '/v1/grants/:id/uses',
    async (req, res, next) => {
      res.locals.resourceServer = await resourceServerOf(deps, req);
      next();
    },
    jsonBody('8kb'),
    async (req, res) => {
      const id = String(req.params.id);
      const report = parseOrThrow(useReport, req.body ?? {}, 'The use report');
      const rs = res.locals.resourceServer as Awaited<ReturnType<typeof resourceServerOf>>;
      const grant = z.uuid().safeParse(id).success ? await findGrant(deps.db, id) : undefined;
      if (!grant || (rs.audiences.length > 0 && !rs.audiences.includes(grant.audience))) throw notFound('Grant');
      const used = await recordGrantUse(deps.db, id, { by: `rs:${rs.name}`, via: 'report', ...report, requestId: res.locals.requestId as string }, deps.clock.now());
      if (!used) {
        const now = await findGrant(deps.db, id);
        throw conflict('The grant cannot be used: it has ended, expired or used up its uses.', { status: now?.status, use_count: now?.use_count, max_uses: now?.max_uses });
      }
      res.status(201).json({ grant_id: id, use_count: used.use_count, max_uses: used.max_uses, status: used.status });
    },
  );
  return r;
}
