import type { ColumnType, Generated } from 'kysely';

type Json = ColumnType<unknown, string, string>;

export interface RegistryTables {
  config_versions: {
    id: Generated<string>;
    content_hash: string;
    applied_by: string;
    applied_at: Date;
    summary: Json;
    document: Json | null;
    /** The policy version this configuration compiled to; null without policies (or before it was recorded). */
    policy_version: ColumnType<string | null, string | null | undefined, string | null>;
  };
  registry_epoch: { id: number; epoch: ColumnType<string, string | number, string | number> };
  issuers: { id: string; spec: Json; updated_at: Date };
  tasks: { name: string; spec: Json; updated_at: Date };
  workloads: {
    id: string;
    kind: 'ci' | 'agent' | 'service';
    owner: string;
    status: 'active' | 'suspended' | 'retired';
    status_reason: string | null;
    status_changed_by: string | null;
    status_changed_at: Date | null;
    spec: Json;
    updated_at: Date;
  };
}
