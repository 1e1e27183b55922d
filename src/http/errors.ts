import type { ErrorRequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { isDatabaseUnavailable } from '../db/database.js';
import { TesseraError, unavailable } from '../lib/errors.js';
import type { AuditSealer } from '../audit/sealer.js';

/** RFC 6749 / 8693 error codes for the /oauth2 endpoints, by internal code. */
const OAUTH_ERRORS: Record<string, { error: string; status?: number }> = {
  invalid_request: { error: 'invalid_request' },
  invalid_token: { error: 'invalid_grant', status: 400 },
  invalid_client: { error: 'invalid_client', status: 401 },
  invalid_scope: { error: 'invalid_scope' },
  invalid_target: { error: 'invalid_target' },
  access_denied: { error: 'access_denied' },
  step_up_required: { error: 'authorization_pending', status: 400 },
  unsupported_grant_type: { error: 'unsupported_grant_type' },
  temporarily_unavailable: { error: 'temporarily_unavailable' },
};

/** Turns anything thrown into a TesseraError: body-parser errors become 4xx, a Postgres outage 503. */
export function toTesseraError(err: unknown): TesseraError {
  if (err instanceof TesseraError) return err;
  const e = err as { type?: string; status?: number; message?: string };
  if (e?.type === 'entity.too.large') return new TesseraError(413, 'invalid_request', 'The request body is too large.');
  if (e?.type === 'entity.parse.failed') return new TesseraError(400, 'invalid_request', 'The request body is not valid JSON.');
  if (e?.type === 'encoding.unsupported') return new TesseraError(415, 'invalid_request', 'The request body encoding is not supported.');
  if (err instanceof URIError) return new TesseraError(400, 'invalid_request', 'The request path is not valid percent-encoding.');
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
    return new TesseraError(e.status, 'invalid_request', 'The request could not be read.');
  }
  if (isDatabaseUnavailable(err)) return unavailable('database unavailable', err);
  return new TesseraError(500, 'server_error', 'An unexpected error occurred.', { cause: err });
}

/** Writes an RFC 9457 problem+json response. */
export function sendProblem(res: Response, err: TesseraError, requestId: string): void {
  res
    .status(err.status)
    .type('application/problem+json')
    .json({
      type: `urn:tessera:error:${err.code}`,
      title: err.code.replace(/_/g, ' '),
      status: err.status,
      detail: err.message,
      code: err.code,
      ...(err.issues && { errors: err.issues }),
      ...err.extra,
      request_id: requestId,
    });
}

/** Writes an RFC 6749 error object. */
export function sendOAuthError(res: Response, err: TesseraError): void {
  const mapped = OAUTH_ERRORS[err.code] ?? { error: err.status >= 500 ? 'server_error' : 'invalid_request' };
  const description = err.issues?.length ? `${err.message} ${err.issues.map((i) => `${i.field}: ${i.reason}`).join('; ')}` : err.message;
  res
    .status(mapped.status ?? err.status)
    .json({ error: mapped.error, error_description: description, ...err.extra });
}

/** The last middleware: logs the detail, answers the client without it, audits authentication failures (summarised). */
export function errorHandler(deps: { log: Logger; audit: Pick<AuditSealer, 'authFailure'> }): ErrorRequestHandler {
  const log = deps.log;
  return (err, req, res, _next) => {
    const te = toTesseraError(err);
    const requestId = String(res.locals.requestId ?? '');
    const entry = { req_id: requestId, code: te.code, status: te.status, detail: te.logDetail, path: req.path };
    if (te.status >= 500) log.error({ ...entry, err: te.cause ?? te }, te.message);
    else log.warn(entry, te.message);
    // Which check failed, where and from which address, never the credential; counted per window.
    if (te.status === 401) deps.audit.authFailure({ path: req.path, check: te.logDetail ?? te.code, client: req.ip ?? 'unknown', requestId });
    if (te.status === 503) res.setHeader('Retry-After', '1');
    res.setHeader('Cache-Control', 'no-store');
    if (res.headersSent) return;
    if (req.path.startsWith('/oauth2/')) sendOAuthError(res, te);
    else sendProblem(res, te, requestId);
  };
}
