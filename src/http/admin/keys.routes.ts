import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { conflict, notFound } from '../../lib/errors.js';
import { parseOrThrow } from '../../lib/validation.js';
import { noStore } from '../grants.routes.js';
import { adminWrite } from './admin-action.js';
import { adminOf } from './admin-auth.js';
import { createAdminKey, findAdminKey, listAdminKeys, revokeAdminKey, roleSchema, usableKeyNamed, type AdminKeyInfo } from './admin-keys.js';
import { mountAdminRoute } from './admin-route.js';
import { ADMIN_ROUTES } from './route-roles.js';

/** Ten years: a key that should outlive that should be rotated instead. */
const MAX_KEY_DAYS = 3650;
const DAY_MS = 86_400_000;

const createBody = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, 'letters, digits and . _ @ - only, at most 64'),
  role: roleSchema,
  /** Who will hold the key (e.g. an e-mail address); default its name. Self-approval rules compare it. */
  person: z.string().trim().min(1).max(256).optional(),
  expires_in_days: z.number().int().min(1).max(MAX_KEY_DAYS).optional(),
});
const revokeBody = z.strictObject({ reason: z.string().min(1).max(1024).optional() }).default({});
const keyId = z.uuid();

function keyView(k: AdminKeyInfo, now: Date) {
  return {
    id: k.id,
    name: k.name,
    person: k.person,
    role: k.role,
    status: k.revoked_at ? 'revoked' : k.expires_at && k.expires_at <= now ? 'expired' : 'active',
    created_by: k.created_by,
    created_at: k.created_at.toISOString(),
    expires_at: k.expires_at?.toISOString() ?? null,
    revoked_at: k.revoked_at?.toISOString() ?? null,
  };
}

/** Admin API keys: create (the secret is shown once), list (never a secret or hash), revoke. */
export function keyRoutes(deps: Deps): Router {
  const r = Router();
  mountAdminRoute(r, deps, ADMIN_ROUTES.createKey, async (req, res) => {
    const body = parseOrThrow(createBody, req.body, 'The key request');
    const now = deps.clock.now();
    const expiresAt = body.expires_in_days ? new Date(now.getTime() + body.expires_in_days * DAY_MS) : null;
    const created = await adminWrite(deps, res, { action: ADMIN_ROUTES.createKey.audit, target_type: 'admin_key', target_id: body.name }, async (trx, actor) => {
      if (await usableKeyNamed(trx, body.name, now)) throw conflict(`A usable key named ${body.name} exists; pick another name or revoke it first.`);
      const { id, key } = await createAdminKey(trx, { name: body.name, role: body.role, person: body.person, createdBy: actor, expiresAt }, now);
      const info = (await findAdminKey(trx, id))!;
      return { result: { info, key }, target_id: id, data: { name: info.name, person: info.person, role: info.role, expires_at: info.expires_at?.toISOString() ?? null } };
    });
    noStore(res).status(201).json({ ...keyView(created.info, now), key: created.key });
  });

  mountAdminRoute(r, deps, ADMIN_ROUTES.listKeys, async (_req, res) => {
    const now = deps.clock.now();
    res.json({ items: (await listAdminKeys(deps.db)).map((k) => keyView(k, now)) });
  });

  mountAdminRoute(r, deps, ADMIN_ROUTES.revokeKey, async (req, res) => {
    const id = String(req.params.id);
    const body = parseOrThrow(revokeBody, req.body ?? {}, 'The revocation');
    if (!keyId.safeParse(id).success) throw notFound('Admin key');
    // Revoking the key in use would lock this admin out mid-session; another admin key must do it.
    if (id === adminOf(res).id) throw conflict('This is the key making the request; revoke it with another admin key.');
    const now = deps.clock.now();
    const revoked = await adminWrite(deps, res, { action: ADMIN_ROUTES.revokeKey.audit, target_type: 'admin_key', target_id: id }, async (trx) => {
      const k = await revokeAdminKey(trx, id, now);
      if (!k) throw (await findAdminKey(trx, id)) ? conflict('The key is already revoked.') : notFound('Admin key');
      return { result: k, data: { name: k.name, role: k.role, reason: body.reason ?? null } };
    });
    res.json(keyView(revoked, now));
  });
  return r;
}
