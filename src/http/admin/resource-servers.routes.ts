import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { createResourceServer } from '../../grants/resource-servers.js';
import { parseOrThrow } from '../../lib/validation.js';
import { noStore } from '../grants.routes.js';
import { adminWrite } from './admin-action.js';
import { mountAdminRoute } from './admin-route.js';
import { ADMIN_ROUTES } from './route-roles.js';

const body = z.strictObject({
  name: z.string().trim().min(1).max(200),
  /** Audiences whose tokens this server may introspect; omit for any. */
  audiences: z.array(z.string().min(1).max(512)).max(50).default([]),
});

/** Registers introspection clients; the secret is in this response only (the audit event never has it). */
export function resourceServerRoutes(deps: Deps): Router {
  const r = Router();
  mountAdminRoute(r, deps, ADMIN_ROUTES.createResourceServer, async (req, res) => {
    const input = parseOrThrow(body, req.body, 'The resource server');
    const rs = await adminWrite(deps, res, { action: ADMIN_ROUTES.createResourceServer.audit, target_type: 'resource_server', target_id: '' }, async (trx, actor) => {
      const created = await createResourceServer(trx, { ...input, createdBy: actor }, deps.clock.now());
      return { result: created, target_id: created.id, data: { name: created.name, audiences: created.audiences } };
    });
    noStore(res).status(201).json({ client_id: rs.id, client_secret: rs.secret, name: rs.name, audiences: rs.audiences });
  });
  return r;
}
