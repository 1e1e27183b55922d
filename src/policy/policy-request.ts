/**
 * What the decision service hands the policy engine, and what it gets back. Every field here is
 * typed in the generated Cedar schema (cedar-schema.ts), so policies see exactly these names.
 */

/** A value a parameter or signal may carry; numbers become Cedar `Long` or `decimal` per their spec. */
export type PolicyValue = string | number | boolean;

/**
 * Context the broker derives from its own history. Every field is required: the decision service
 * must compute all of them, because a policy can rely on a broker fact being present. The one
 * exception is `active_grants`, the costliest to read: null when no policy of the task reads it.
 */
export interface BrokerSignals {
  /** Grant requests by this workload in the sliding last 60 s, this one excluded. */
  requests_last_minute: number;
  /** Grant requests by this workload in the sliding last hour, this one excluded. */
  requests_last_hour: number;
  /**
   * Grants of this workload currently active (any task), counted up to ACTIVE_GRANTS_CAP; null when
   * no policy of the task reads it, and then absent from the Cedar context (a policy that reads it
   * anyway fails evaluation, which denies).
   */
  active_grants: number | null;
  /** This workload has never been granted this task before. */
  task_is_new: boolean;
  /** The param values of this request were never seen before for this workload and task. */
  target_is_new: boolean;
  /** Names of the params whose value is new for this workload and task. */
  new_params: string[];
  /** Each registered calendar name → whether it is open now. All registered names must be present. */
  calendars: Record<string, boolean>;
}

/**
 * Identity-token claims exposed to policy. Only these, and only string values, so that policies can
 * be validated; anything else the token carries stays out of the decision.
 */
export const IDENTITY_CLAIMS = [
  'repository',
  'repository_owner',
  'ref',
  'ref_type',
  'environment',
  'runner_environment',
  'job_workflow_ref',
  'workflow',
  'actor',
  'event_name',
] as const;
export type IdentityClaim = (typeof IDENTITY_CLAIMS)[number];

/** What the authenticated identity token says; `claims` may hold anything, only IDENTITY_CLAIMS pass. */
export interface IdentityContext {
  issuer: string;
  subject: string;
  token_age_seconds: number;
  claims: Record<string, unknown>;
}

/** One request to evaluate: signals already filtered to fresh, registered types. */
export interface PolicyRequest {
  workload: { id: string; kind: string; owner: string };
  task: { name: string; risk: string };
  params: Record<string, PolicyValue>;
  purpose: string;
  identity: IdentityContext;
  signals: Record<string, PolicyValue>;
  broker: BrokerSignals;
}

export type PolicyOutcome = 'allow' | 'step_up' | 'deny';

/** What the `@auto_approve` policies answer for a step-up: a vote, cast as `policy:<policy>`. */
export interface ApproverAnswer {
  vote: 'approve' | 'deny';
  /** The determining approver policy (the first by id when several applied). */
  policy: string;
  reason: string | null;
}

/** The engine's answer; `errors` are for the admin and the log, `reasons` may be shown to the caller. */
export interface PolicyDecision {
  outcome: PolicyOutcome;
  reasons: string[];
  /** Ids of the policies that determined the outcome (Cedar's diagnostics.reason). */
  determining: string[];
  /** The smallest `@max_ttl` of the determining permits, absent when none sets one. */
  maxTtlSeconds?: number;
  /** On a step-up: the largest `@approvals` of its determining step-up permits, absent when none sets one. */
  requiredApprovals?: number;
  errors: string[];
  policyVersion: string;
  evaluationMicros: number;
}
