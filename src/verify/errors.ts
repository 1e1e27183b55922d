/** The stable reasons a verification can fail; switch on these, never on the message. */
export type VerificationErrorCode =
  | 'invalid_token'
  | 'insufficient_scope'
  | 'wrong_task'
  | 'token_revoked'
  | 'status_unavailable'
  | 'invalid_dpop_proof';

/**
 * Why a token was refused. `message` is safe to show a client (it never contains the token);
 * `cause` holds the underlying jose or network error for the service's own log.
 */
export class VerificationError extends Error {
  readonly code: VerificationErrorCode;

  constructor(code: VerificationErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VerificationError';
    this.code = code;
  }
}
