import { Router } from 'express';
import type { Deps } from '../deps.js';
import { currentStatusList, STATUS_LIST_TTL_SECONDS } from '../grants/status-list.service.js';
import { notFound } from '../lib/errors.js';

/** Serves the signed Token Status List (draft-ietf-oauth-status-list) that access tokens point at. */
export function statusListRoutes(deps: Deps): Router {
  const r = Router();
  r.get('/v1/status-lists/:id', async (req, res) => {
    const id = /^\d{1,9}$/.test(req.params.id) ? Number(req.params.id) : -1;
    const token = await currentStatusList(deps, id, deps.clock.now());
    if (!token) throw notFound('Status list');
    res.setHeader('Cache-Control', `public, max-age=${STATUS_LIST_TTL_SECONDS}`).type('application/statuslist+jwt').send(token);
  });
  return r;
}
