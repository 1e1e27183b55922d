import { describe, expect, it } from 'vitest';
import { AuditSecretError, assertNoSecrets } from '../../src/audit/secret-guard.js';
import { pendingAuditRows } from '../../src/audit/audit-outbox.js';
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

  it('stages data in its JSON form and checks that form: a toJSON cannot hide a secret', () => {
    const stage = (data: Record<string, unknown>) => pendingAuditRows([{ ...sampleEvent(1), data }], new Date(0));
    expect(() => stage({ client_secret: { toJSON: () => 'hunter2' } })).toThrow(AuditSecretError);
    expect(() => stage({ callback: new URL(`https://example.test/cb?t=${JWT}`) })).toThrow(AuditSecretError);
    expect(stage({ at: new Date(0), seen: { toJSON: () => 3 } })[0]!.data).toEqual({ at: '1970-01-01T00:00:00.000Z', seen: 3 });
  });
});
