import { Router, type Response } from 'express';
import type { Deps } from '../deps.js';
import { authenticateSignalSource, type AuthenticatedSource } from '../signals/source-auth.js';
import { authenticationFailed } from '../lib/errors.js';
import { sha256Hex } from '../lib/hash.js';
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
  }, jsonBody(SIGNAL_BODY_LIMIT, (_req, res, raw) => {
    // Only a signed request has a body digest to compare; an API-key source's body is not hashed.
    const { locals } = res as Response;
    if ((locals.signalSource as AuthenticatedSource).bodySha256 !== undefined) locals.bodySha256 = sha256Hex(raw);
  }), async (req, res) => {
    const { source, bodySha256 } = res.locals.signalSource as AuthenticatedSource;
    // A signed request signs one body: any other (or none) is refused like a bad signature.
    if (bodySha256 !== undefined && res.locals.bodySha256 !== bodySha256) {
      throw authenticationFailed(`signal source ${source.id}: the body does not match the signed body_sha256`);
    }
    const stored = await ingestSignals(deps.db, deps.registry.snapshot, source, req.body, deps.clock.now(), res.locals.requestId as string);
    res.status(202).json({ accepted: stored.length });
    signalFollowUps(deps).schedule(stored);
  });
  return r;
}
