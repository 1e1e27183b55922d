export type AdminRole = 'viewer' | 'approver' | 'operator' | 'admin';

export interface AdminTables {
  admin_keys: {
    id: string;
    name: string;
    /** Who holds the key: the person approvals compare with a workload's owner and sponsor. */
    person: string;
    role: AdminRole;
    key_sha256: string;
    created_by: string;
    created_at: Date;
    expires_at: Date | null;
    revoked_at: Date | null;
  };
}
