import { Router } from 'express';
import { z } from 'zod';
import { authContext, type Deps } from '../deps.js';
import { authenticateWorkload } from '../identity/authenticate.js';
import { requestGrant, type IssuedGrant } from '../grants/grant.service.js';
import { delegateGrant } from '../grants/delegation.js';
import { TASK_DETAILS_TYPE } from '../grants/access-token.js';
import { invalidRequest, TesseraError } from '../lib/errors.js';
import { parseOrThrow } from '../lib/validation.js';
import { noStore } from './grants.routes.js';
import { formBody } from './body.js';
import { pendingResponse } from './approval-response.js';

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** Identity tokens (a workload's proof); an access token of ours as subject asks for delegation. */
const IDENTITY_TOKEN_TYPES = ['urn:ietf:params:oauth:token-type:jwt', 'urn:ietf:params:oauth:token-type:id_token'];

const jsonText = (what: string) =>
  z.string().transform((s, ctx) => {
    try {
      return JSON.parse(s) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: `${what} must be JSON` });
      return z.NEVER;
    }
  });

const taskDetails = z.array(z.object({ type: z.literal(TASK_DETAILS_TYPE), task: z.string().min(1), params: z.record(z.string(), z.unknown()).default({}) })).length(1, 'exactly one tessera_task entry');

/**
 * RFC 8693 token exchange. The task is named either by `authorization_details` (RFC 9396, one entry of
 * type `tessera_task` with `task` and `params`) or by the `task` parameter with `task_params` as a JSON
 * object. Everything else is standard, so existing STS clients work unchanged.
 */
const exchangeForm = z.object({
  grant_type: z.string(),
  subject_token: z.string().min(1),
  subject_token_type: z.enum([...IDENTITY_TOKEN_TYPES, ACCESS_TOKEN_TYPE]),
  actor_token: z.string().min(1).optional(),
  actor_token_type: z.enum(IDENTITY_TOKEN_TYPES).optional(),
  requested_token_type: z.literal(ACCESS_TOKEN_TYPE).optional(),
  scope: z.string().optional(),
  audience: z.string().optional(),
  resource: z.string().optional(),
  task: z.string().optional(),
  task_params: jsonText('task_params').pipe(z.record(z.string(), z.unknown())).optional(),
  authorization_details: jsonText('authorization_details').pipe(taskDetails).optional(),
  purpose: z.string().max(1024).optional(),
  ttl_seconds: z.coerce.number().int().positive().optional(),
}).superRefine((v, ctx) => {
  // RFC 8693 §2.1: actor_token_type comes with actor_token and only with it.
  if (!v.actor_token !== !v.actor_token_type) ctx.addIssue({ code: 'custom', path: ['actor_token_type'], message: 'give actor_token and actor_token_type together' });
  if (v.actor_token && v.subject_token_type !== ACCESS_TOKEN_TYPE) {
    ctx.addIssue({ code: 'custom', path: ['actor_token'], message: 'an actor acts on a delegated grant: the subject_token must be an access token' });
  }
});
type ExchangeForm = z.infer<typeof exchangeForm>;

/** The RFC 8693 §2.2.1 answer for a minted grant. */
function tokenResponse(issued: IssuedGrant) {
  return {
    access_token: issued.token,
    issued_token_type: ACCESS_TOKEN_TYPE,
    token_type: 'Bearer',
    expires_in: issued.expiresIn,
    scope: issued.grant.scopes.join(' '),
    grant_id: issued.grant.id,
    decision_id: issued.decision.id,
  };
}

/** Delegation: the subject token is a grant of ours; the actor token, if any, names the workload that will act. */
async function delegate(deps: Deps, form: ExchangeForm, task: string | undefined, params: Record<string, unknown> | undefined, requestId: string) {
  const actor = form.actor_token ? await authenticateWorkload(form.actor_token, authContext(deps)) : undefined;
  return delegateGrant(deps, {
    subjectToken: form.subject_token,
    actor,
    task,
    params,
    scopes: form.scope?.split(' ').filter(Boolean),
    audience: form.audience ?? form.resource,
    ttlSeconds: form.ttl_seconds,
    purpose: form.purpose,
    requestId,
  });
}

/** RFC 8693 token exchange: an identity token for a new grant, or a grant's access token for a narrower child. */
export function oauthRoutes(deps: Deps): Router {
  const r = Router();
  r.use('/oauth2', formBody('64kb', 50));
  r.post('/oauth2/token', async (req, res) => {
    if (req.body?.grant_type !== TOKEN_EXCHANGE) {
      throw new TesseraError(400, 'unsupported_grant_type', `Only ${TOKEN_EXCHANGE} is supported.`);
    }
    const form = parseOrThrow(exchangeForm, req.body, 'The token request');
    const details = form.authorization_details?.[0];
    const task = details?.task ?? form.task;
    if (details && form.task && form.task !== details.task) {
      throw invalidRequest('Task named twice, differently.', [{ field: 'task', reason: 'differs from authorization_details' }]);
    }
    const requestId = res.locals.requestId as string;
    if (form.subject_token_type === ACCESS_TOKEN_TYPE) {
      noStore(res).json(tokenResponse(await delegate(deps, form, task, details?.params ?? form.task_params, requestId)));
      return;
    }
    if (!task) throw invalidRequest('Name the task.', [{ field: 'task', reason: 'give task or authorization_details' }]);
    const principal = await authenticateWorkload(form.subject_token, authContext(deps));
    const outcome = await requestGrant(deps, principal, {
      task,
      params: details?.params ?? form.task_params ?? {},
      purpose: form.purpose,
      ttlSeconds: form.ttl_seconds,
      scopes: form.scope?.split(' ').filter(Boolean),
      audience: form.audience ?? form.resource,
      requestId,
    });
    if (outcome.kind === 'pending') {
      // RFC 8628's authorization_pending: the client polls the approval, then redeems it.
      throw new TesseraError(400, 'step_up_required', 'This request needs an approval; poll it and redeem it once approved.', { extra: pendingResponse(deps, outcome) });
    }
    noStore(res).json(tokenResponse(outcome));
  });
  return r;
}
