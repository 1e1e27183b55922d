import type { AuditEventInput } from './audit-event.js';
import { boundedMemo } from '../lib/bounded-memo.js';

// A compact JWS/JWT: a base64url JSON header and payload (both start `{"` → `eyJ`), then a dot.
const JWT_SHAPE = /eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\./;
const PEM_BLOCK = /-----BEGIN [A-Z0-9 ]+-----/;
// Matched as whole words of the snake_cased key, so `access_token` and `clientSecret` are caught while
// `token_count: 3` (no string) and `token_sha256` (a hash) are not; `tokenizer` is not a word match.
const SECRET_WORD = /(?:^|_)(?:token|secret|password|passphrase|private_key|assertion|api_key)s?(?:_|$)/;
const HASH_SUFFIX = /_sha256$/;

/** Thrown when an audit event carries something shaped like a credential: a bug in the caller. */
export class AuditSecretError extends Error {
  readonly code = 'audit_secret_in_event';
  constructor(
    readonly path: string,
    readonly rule: 'jwt' | 'pem' | 'secret_key',
  ) {
    // Names the field, never the value: this message ends up in logs.
    super(`audit event field ${path} looks like a credential (${rule}); record its sha256 instead`);
    this.name = 'AuditSecretError';
  }
}

const snakeCase = (key: string): string =>
  key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/-/g, '_')
    .toLowerCase();

function checkString(path: string, value: string): void {
  if (JWT_SHAPE.test(value)) throw new AuditSecretError(path, 'jwt');
  if (PEM_BLOCK.test(value)) throw new AuditSecretError(path, 'pem');
}

/** How a key reads: a hash (`*_sha256`, never secret), secret-sounding, or neither; kept once seen. */
const kindOf = boundedMemo((key): 'hash' | 'secret' | 'plain' => {
  const name = snakeCase(key);
  return HASH_SUFFIX.test(name) ? 'hash' : SECRET_WORD.test(name) ? 'secret' : 'plain';
});

// `secretKey` is set below a secret-sounding key, so `tokens: ['...']` or `token: { value }` are caught too.
function checkValue(path: string, value: unknown, secretKey: boolean): void {
  if (typeof value === 'string') {
    if (secretKey) throw new AuditSecretError(path, 'secret_key');
    return checkString(path, value);
  }
  if (Array.isArray(value)) return value.forEach((v, i) => checkValue(`${path}[${i}]`, v, secretKey));
  if (value === null || typeof value !== 'object') return;
  for (const [key, v] of Object.entries(value)) {
    const kind = kindOf(key);
    checkValue(`${path}.${key}`, v, kind === 'hash' ? false : secretKey || kind === 'secret');
  }
}

/**
 * Refuses an event that carries a JWT, a PEM block, or a string under a secret-sounding key: every
 * audit write passes through here, which is how "never store a token" holds for the whole broker.
 */
export function assertNoSecrets(event: AuditEventInput): void {
  for (const field of ['actor', 'action', 'outcome', 'target_type', 'target_id', 'request_id'] as const) {
    const v = event[field];
    if (typeof v === 'string') checkString(field, v);
  }
  checkValue('data', event.data ?? {}, false);
}
