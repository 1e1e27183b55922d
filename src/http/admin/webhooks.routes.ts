import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { createSubscription } from '../../events/webhook.repository.js';
import { parseOrThrow } from '../../lib/validation.js';
import { adminWrite } from './admin-action.js';
import { mountAdminRoute } from './admin-route.js';
import { ADMIN_ROUTES } from './route-roles.js';

const body = z.strictObject({
  url: z.url({ protocol: /^https?$/ }).max(2048),
  /** `aud` of the SETs this receiver gets; defaults to its URL. */
  audience: z.string().min(1).max(512).optional(),
});

/** Webhook subscriptions: receivers of CAEP session-revoked SETs, verified with the broker's JWKS. */
export function webhookRoutes(deps: Deps): Router {
  const r = Router();
  mountAdminRoute(r, deps, ADMIN_ROUTES.createWebhook, async (req, res) => {
    const input = parseOrThrow(body, req.body, 'The webhook subscription');
    const sub = await adminWrite(deps, res, { action: ADMIN_ROUTES.createWebhook.audit, target_type: 'webhook', target_id: '' }, async (trx, actor) => {
      const created = await createSubscription(trx, { url: input.url, audience: input.audience ?? input.url, createdBy: actor }, deps.clock.now());
      return { result: created, target_id: created.id, data: { url: created.url, audience: created.audience } };
    });
    res.status(201).json({ id: sub.id, url: sub.url, audience: sub.audience, created_at: sub.created_at.toISOString() });
  });
  return r;
}
