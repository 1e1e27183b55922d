/** One field-level problem in a request: which field, and why it was refused. */
export interface FieldIssue {
  field: string;
  reason: string;
}

/**
 * The one error base class. `status` is the HTTP status, `code` a stable machine-readable name,
 * `message` what the client may read. `logDetail` goes to the log only (e.g. which authentication
 * check failed), never to the client.
 */
export class TesseraError extends Error {
  readonly status: number;
  readonly code: string;
  readonly issues: FieldIssue[] | undefined;
  readonly logDetail: string | undefined;
  readonly extra: Record<string, unknown> | undefined;

  constructor(
    status: number,
    code: string,
    message: string,
    options: { issues?: FieldIssue[]; logDetail?: string; extra?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TesseraError';
    this.status = status;
    this.code = code;
    this.issues = options.issues;
    this.logDetail = options.logDetail;
    this.extra = options.extra;
  }
}

/** 400: the request is malformed; `issues` name each bad field. */
export const invalidRequest = (message: string, issues?: FieldIssue[]) =>
  new TesseraError(400, 'invalid_request', message, { issues });

/** 401 with a generic message; the specific failed check goes only to the log. */
export const authenticationFailed = (logDetail: string, cause?: unknown) =>
  new TesseraError(401, 'invalid_token', 'The identity token could not be authenticated.', { logDetail, cause });

/** 403: authenticated, but not allowed. */
export const forbidden = (message: string, extra?: Record<string, unknown>, logDetail?: string) =>
  new TesseraError(403, 'access_denied', message, { extra, logDetail });

/** 404 for an object the caller may not see or that does not exist (the two are not told apart). */
export const notFound = (what: string) => new TesseraError(404, 'not_found', `${what} was not found.`);

/** 409: the object's state does not allow this action. */
export const conflict = (message: string, extra?: Record<string, unknown>) =>
  new TesseraError(409, 'conflict', message, { extra });

/** 503: a dependency (Postgres) is down; the broker fails closed and the client should retry. */
export const unavailable = (logDetail: string, cause?: unknown) =>
  new TesseraError(503, 'temporarily_unavailable', 'The broker cannot serve this request right now; retry shortly.', {
    logDetail,
    cause,
  });
