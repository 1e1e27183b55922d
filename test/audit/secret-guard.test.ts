import { describe, expect, it } from 'vitest';
import { AuditSecretError, assertNoSecrets } from '../../src/audit/secret-guard.js';
import { sampleEvent } from './support.js';

const JWT = 'eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJkZXBsb3ktYm90In0.c2lnbmF0dXJl';
const PEM = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----';

function refusal(data: Record<string, unknown>, extra: object = {}): AuditSecretError {
  try {
    assertNoSecrets({ ...sampleEvent(1), ...extra, data });
  } catch (err) {
    expect(err).toBeInstanceOf(AuditSecretError);
    return err as AuditSecretError;
  }
  throw new Error('expected the guard to refuse');
}

describe('audit secret guard', () => {
  it('refuses a JWT-shaped value anywhere, naming the field but not the value', () => {
    const err = refusal({ request: { headers: [`Bearer ${JWT}`] } });
    expect(err).toMatchObject({ code: 'audit_secret_in_event', path: 'data.request.headers[0]', rule: 'jwt' });
    expect(err.message).not.toContain('eyJ');
    expect(refusal({}, { request_id: JWT }).path).toBe('request_id');
  });

  it('refuses a PEM block', () => {
    expect(refusal({ key: { material: PEM } })).toMatchObject({ path: 'data.key.material', rule: 'pem' });
  });

  it('refuses strings under secret-sounding keys, in any case style and below them', () => {
    const keys = ['token', 'access_token', 'clientSecret', 'password', 'private_key', 'client-assertion', 'apiKey'];
    for (const key of keys) {
      expect(refusal({ [key]: 'opaque-value' })).toMatchObject({ path: `data.${key}`, rule: 'secret_key' });
    }
    expect(refusal({ tokens: ['a', 'b'] }).path).toBe('data.tokens[0]');
    expect(refusal({ credentials: { secret: { value: 'x' } } }).path).toBe('data.credentials.secret.value');
  });

  it('accepts hashes, numbers and ordinary words that merely contain a secret word', () => {
    expect(() =>
      assertNoSecrets({
        ...sampleEvent(1),
        data: {
          token_sha256: 'ab'.repeat(32),
          token: { jti_sha256: 'cd'.repeat(32) },
          token_count: 3,
          tokenizer: 'bpe',
          kid: 'k1',
        },
      }),
    ).not.toThrow();
  });
});
