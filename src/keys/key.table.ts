import type { ColumnType } from 'kysely';

export type KeyStatus = 'next' | 'current' | 'retired' | 'revoked';

export interface KeyTables {
  signing_keys: {
    kid: string;
    alg: string;
    public_jwk: ColumnType<Record<string, unknown>, string, string>;
    private_key_enc: string;
    status: KeyStatus;
    created_at: Date;
    activated_at: Date | null;
    retired_at: Date | null;
    publish_until: Date | null;
  };
}
