import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { createSubscription } from '../../events/webhook.repository.js';
import { parseOrThrow } from '../../lib/validation.js';
import { adminOf, requireRole } from './admin-auth.js';
import { jsonBody } from '../body.js';

const body = z.strictObject({
  url: z.url({ protocol: /^https?$/ }).max(2048),
  /** `aud` of the SETs this receiver gets; defaults to its URL. */
  audience: z.string().min(1).max(512).optional(),
});

/** Webhook subscriptions: receivers of CAEP session-revoked SETs, verified with the broker's JWKS. */
export function webhookRoutes(deps: Deps): Router {
  const r = Router();
  r.post('/webhooks', requireRole(deps, 'admin'), jsonBody('16kb'), async (req, res) => {
    const input = parseOrThrow(body, req.body, 'The webhook subscription');
    const sub = await createSubscription(deps.db, { url: input.url, audience: input.audience ?? input.url, createdBy: `admin:${adminOf(res).name}` }, deps.clock.now());
    res.status(201).json({ id: sub.id, url: sub.url, audience: sub.audience, created_at: sub.created_at.toISOString() });
  });
  return r;
}
