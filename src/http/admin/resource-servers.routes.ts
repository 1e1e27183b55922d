import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { createResourceServer } from '../../grants/resource-servers.js';
import { parseOrThrow } from '../../lib/validation.js';
import { adminOf, requireRole } from './admin-auth.js';
import { jsonBody } from '../body.js';

const body = z.strictObject({
  name: z.string().trim().min(1).max(200),
  /** Audiences whose tokens this server may introspect; omit for any. */
  audiences: z.array(z.string().min(1).max(512)).max(50).default([]),
});

/** Registers introspection clients; the secret is in this response only. */
export function resourceServerRoutes(deps: Deps): Router {
  const r = Router();
  r.post('/resource-servers', requireRole(deps, 'admin'), jsonBody('16kb'), async (req, res) => {
    const input = parseOrThrow(body, req.body, 'The resource server');
    const rs = await createResourceServer(deps.db, { ...input, createdBy: `admin:${adminOf(res).name}` }, deps.clock.now());
    res.setHeader('Cache-Control', 'no-store').status(201).json({ client_id: rs.id, client_secret: rs.secret, name: rs.name, audiences: rs.audiences });
  });
  return r;
}
