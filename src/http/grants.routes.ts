import { Router, type RequestHandler, type Response } from 'express';
import { decodeProtectedHeader } from 'jose';
import { z } from 'zod';
import { authContext, type Deps } from '../deps.js';
import { authenticateWorkload } from '../identity/authenticate.js';
import { completeGrant, requestGrant, type IssuedGrant } from '../grants/grant.service.js';
import { verifyOwnAccessToken } from '../grants/own-token.js';
import { delegateGrant } from '../grants/delegation.js';
import { authenticationFailed, notFound } from '../lib/errors.js';
import { parseOrThrow } from '../lib/validation.js';
import { bearerToken } from './bearer.js';
import { pendingResponse } from './approval-response.js';

const grantBody = z.strictObject({
  task: z.string().min(1).max(128),
  params: z.record(z.string(), z.unknown()).default({}),
  purpose: z.string().max(1024).optional(),
  ttl_seconds: z.number().int().positive().optional(),
});

/** A narrower child of the grant whose access token is the bearer (see delegateGrant). */
const delegateBody = z.strictObject({
  task: z.string().min(1).max(128).optional(),
  params: z.record(z.string(), z.unknown()).optional(),
  scopes: z.array(z.string().min(1).max(256)).max(64).optional(),
  purpose: z.string().max(1024).optional(),
  ttl_seconds: z.number().int().positive().optional(),
  /** The identity token of the workload (a tool) that will act with the child. */
  actor_token: z.string().min(1).max(16_384).optional(),
});

/** The JSON shape of a minted grant, shared by every endpoint that mints. */
export function grantResponse(issued: IssuedGrant) {
  return {
    access_token: issued.token,
    token_type: 'Bearer',
    expires_in: issued.expiresIn,
    grant_id: issued.grant.id,
    task: issued.grant.task,
    scope: issued.grant.scopes.join(' '),
    audience: issued.grant.audience,
    expires_at: issued.grant.expires_at.toISOString(),
    decision_id: issued.decision.id,
  };
}

/** Responses that carry a token must never be cached (RFC 6749 §5.1). */
export const noStore = (res: Response) => res.setHeader('Cache-Control', 'no-store').setHeader('Pragma', 'no-cache');

const uuid = z.uuid();

/** Workload endpoints: ask for a grant, delegate a narrower one, end one; `body` parses their JSON. */
export function grantRoutes(deps: Deps, body: RequestHandler): Router {
  const r = Router();
  // Exactly these routes: others under /v1/grants (a resource server's use report) authenticate
  // their caller before they read a body, with a parser and limit of their own.
  r.post(['/v1/grants', '/v1/grants/:id/delegate', '/v1/grants/:id/complete'], body);
  r.post('/v1/grants', async (req, res) => {
    const body = parseOrThrow(grantBody, req.body, 'The grant request');
    const principal = await authenticateWorkload(bearerToken(req), authContext(deps));
    const outcome = await requestGrant(deps, principal, {
      task: body.task,
      params: body.params,
      purpose: body.purpose,
      ttlSeconds: body.ttl_seconds,
      requestId: res.locals.requestId as string,
    });
    if (outcome.kind === 'pending') {
      const pending = pendingResponse(deps, outcome);
      noStore(res).status(202).setHeader('Location', pending.poll).json(pending);
      return;
    }
    noStore(res).status(201).json(grantResponse(outcome));
  });

  r.post('/v1/grants/:id/delegate', async (req, res) => {
    const id = req.params.id;
    if (!uuid.safeParse(id).success) throw notFound('Grant');
    const body = parseOrThrow(delegateBody, req.body ?? {}, 'The delegation request');
    const actor = body.actor_token ? await authenticateWorkload(body.actor_token, authContext(deps)) : undefined;
    const issued = await delegateGrant(deps, {
      subjectToken: bearerToken(req),
      grantId: id,
      actor,
      task: body.task,
      params: body.params,
      scopes: body.scopes,
      ttlSeconds: body.ttl_seconds,
      purpose: body.purpose,
      requestId: res.locals.requestId as string,
    });
    noStore(res).status(201).json({ ...grantResponse(issued), parent_id: id });
  });

  r.post('/v1/grants/:id/complete', async (req, res) => {
    const id = req.params.id;
    if (!uuid.safeParse(id).success) throw notFound('Grant');
    const credential = bearerToken(req);
    let workloadId: string;
    // The holder proves itself with the grant's own token, or with a fresh identity token of its workload.
    if (safeTyp(credential) === 'at+jwt') {
      const claims = await verifyOwnAccessToken(deps, credential);
      if (claims.jti !== id) throw authenticationFailed('access token is for another grant');
      workloadId = String(claims.sub);
    } else {
      workloadId = (await authenticateWorkload(credential, authContext(deps))).workload.id;
    }
    const grant = await completeGrant(deps, id, workloadId, res.locals.requestId as string);
    noStore(res).json({ grant_id: grant.id, status: grant.status, ended_at: grant.ended_at?.toISOString() });
  });
  return r;
}

function safeTyp(token: string): unknown {
  try {
    return decodeProtectedHeader(token).typ;
  } catch {
    return undefined;
  }
}
