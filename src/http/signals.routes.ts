import { Router } from 'express';
import type { Deps } from '../deps.js';
import { authenticateSignalSource } from '../signals/source-auth.js';
import { ingestSignals } from '../signals/ingest.js';
import { signalFollowUps } from '../signals/follow-up.js';
import { bearerToken } from './bearer.js';
import { jsonBody } from './body.js';

/** Signal batches carry at most 500 small observations. */
const SIGNAL_BODY_LIMIT = '256kb';

/** POST /v1/signals: registered signal sources push live context. */
export function signalRoutes(deps: Deps): Router {
  const r = Router();
  r.post('/v1/signals', async (req, res, next) => {
    // Authenticate before reading the body: an unknown caller's payload is never parsed.
    const now = deps.clock.now();
    res.locals.signalSource = await authenticateSignalSource(bearerToken(req), {
      registry: deps.registry.snapshot,
      db: deps.db,
      now,
      audience: `${deps.issuer}/v1/signals`,
    });
    next();
  }, jsonBody(SIGNAL_BODY_LIMIT), async (req, res) => {
    const stored = await ingestSignals(deps.db, deps.registry.snapshot, res.locals.signalSource, req.body, deps.clock.now(), res.locals.requestId as string);
    res.status(202).json({ accepted: stored.length });
    signalFollowUps(deps).schedule(stored);
  });
  return r;
}
