import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { TesseraAccessToken } from './access-token.js';
import { DPOP_ALGORITHMS } from './dpop.js';
import { VerificationError, type VerificationErrorCode } from './errors.js';
import type { Verifier, VerifyRequirements } from './verifier.js';

export interface TesseraMiddlewareOptions {
  scope?: string | string[];
  task?: string;
  /**
   * The URL the client called, checked against a DPoP proof's `htu`. Defaults to
   * `${req.protocol}://${req.host}${req.originalUrl}`; behind a TLS terminator set express's
   * `trust proxy` or supply this.
   */
  requestUrl?: (req: Request) => string;
  /** Called with every refusal, for the service's log: `err.cause` holds the detail clients never see. */
  onRefused?: (err: VerificationError, req: Request) => void;
}

// RFC 6750 / RFC 9449 error codes and statuses. A wrong task is a permission problem like a
// missing scope (403); a status list we cannot read is our outage, not the client's fault (503).
const ANSWERS: Record<VerificationErrorCode, { status: number; error: string }> = {
  invalid_token: { status: 401, error: 'invalid_token' },
  token_revoked: { status: 401, error: 'invalid_token' },
  invalid_dpop_proof: { status: 401, error: 'invalid_dpop_proof' },
  insufficient_scope: { status: 403, error: 'insufficient_scope' },
  wrong_task: { status: 403, error: 'insufficient_scope' },
  status_unavailable: { status: 503, error: 'temporarily_unavailable' },
};

// The status list cache refills on the next successful fetch; a short retry hint is enough.
const STATUS_RETRY_AFTER_SECONDS = 5;

const AUTHORIZATION = /^(Bearer|DPoP) ([A-Za-z0-9\-._~+/]+=*)$/i;

// error_description may only hold these characters inside a WWW-Authenticate quoted string.
function headerSafe(text: string): string {
  return text.replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/g, '');
}

function challenge(scheme: 'Bearer' | 'DPoP', params: Record<string, string>): string {
  const parts = Object.entries(params).map(([name, value]) => `${name}="${headerSafe(value)}"`);
  if (scheme === 'DPoP') parts.push(`algs="${DPOP_ALGORITHMS.join(' ')}"`);
  return parts.length > 0 ? `${scheme} ${parts.join(', ')}` : scheme;
}

function refuse(res: Response, err: VerificationError, scheme: 'Bearer' | 'DPoP', scope: string[]): void {
  const { status, error } = ANSWERS[err.code];
  if (status === 503) {
    res.set('Retry-After', String(STATUS_RETRY_AFTER_SECONDS));
  } else {
    const params: Record<string, string> = { error, error_description: err.message };
    if (error === 'insufficient_scope' && scope.length > 0) params.scope = scope.join(' ');
    res.set('WWW-Authenticate', challenge(error === 'invalid_dpop_proof' ? 'DPoP' : scheme, params));
  }
  res.status(status).json({ error, error_description: err.message });
}

/**
 * Express middleware: verifies the `Authorization: Bearer|DPoP` token, puts the claims in
 * `res.locals.tessera` and calls next; otherwise answers 401/403/503 without echoing the token.
 */
export function requireTesseraToken(verifier: Verifier, options: TesseraMiddlewareOptions = {}): RequestHandler {
  const scope = [options.scope ?? []].flat();
  const requestUrl = options.requestUrl ?? ((req: Request) => `${req.protocol}://${req.host}${req.originalUrl}`);

  return async (req: Request, res: Response, next: NextFunction) => {
    const header = req.headers.authorization;
    if (header === undefined) {
      // RFC 6750 section 3.1: a request without credentials gets a bare challenge, no error code.
      res.set('WWW-Authenticate', 'Bearer').status(401).json({ error: 'invalid_token', error_description: 'no access token' });
      return;
    }
    const match = AUTHORIZATION.exec(header);
    const scheme = match?.[1]?.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer';
    try {
      if (!match) throw new VerificationError('invalid_token', 'malformed Authorization header');
      const token = match[2]!;
      const requirements: VerifyRequirements = { scope: options.scope, task: options.task };
      if (scheme === 'DPoP') {
        const proof = req.headers.dpop;
        if (typeof proof !== 'string') throw new VerificationError('invalid_dpop_proof', 'DPoP header missing');
        requirements.dpop = { proof, method: req.method, url: requestUrl(req) };
      }
      res.locals.tessera = await verifier.verify(token, requirements);
    } catch (err) {
      if (!(err instanceof VerificationError)) return next(err);
      options.onRefused?.(err, req);
      return refuse(res, err, scheme, scope);
    }
    next();
  };
}

/** The verified claims `requireTesseraToken` stored for this request. */
export function tesseraToken(res: Response): TesseraAccessToken {
  const claims = res.locals.tessera as TesseraAccessToken | undefined;
  if (!claims) throw new Error('tesseraToken: requireTesseraToken did not run for this route');
  return claims;
}
