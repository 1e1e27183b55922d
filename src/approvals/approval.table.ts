import type { ColumnType, Generated } from 'kysely';

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'redeemed';
export type Vote = 'approve' | 'deny';
export type ApprovalForbid = 'owner' | 'sponsor';

type Json<T = unknown> = ColumnType<T, string, string>;

export interface ApprovalTables {
  approvals: {
    id: string;
    workload_id: string;
    workload_owner: string;
    /** The workload's sponsor when it asked, if it names one. */
    workload_sponsor: string | null;
    task: string;
    params: Json<Record<string, unknown>>;
    params_sha256: string;
    purpose: string | null;
    decision_id: string;
    status: ApprovalStatus;
    required_approvals: number;
    /** Whose votes the task refuses on this request: the workload's `owner`, its `sponsor`. */
    forbid: ApprovalForbid[];
    created_at: Date;
    expires_at: Date;
    decided_at: Date | null;
    redeemed_at: Date | null;
    grant_id: string | null;
  };
  approval_votes: {
    approval_id: string;
    approver: string;
    /** Who voted, lowercased: one vote per person, whichever key or login they used. */
    person: string;
    vote: Vote;
    comment: string | null;
    at: Date;
  };
  approval_webhooks: {
    id: string;
    url: string;
    secret_enc: string;
    created_by: string;
    created_at: Date;
    disabled_at: Date | null;
  };
  approval_webhook_deliveries: {
    id: Generated<string>;
    webhook_id: string;
    approval_id: string;
    event: string;
    payload: Json<Record<string, unknown>>;
    status: 'pending' | 'delivered' | 'failed';
    attempts: ColumnType<number, number | undefined, number>;
    next_attempt_at: Date;
    last_error: string | null;
    created_at: Date;
    delivered_at: Date | null;
  };
}
