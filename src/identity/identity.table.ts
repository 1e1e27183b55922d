export interface IdentityTables {
  assertion_jtis: { workload_id: string; jti: string; expires_at: Date };
}
