import { z } from 'zod';
import { signalTypeSpec } from '../policy/signal-type.spec.js';
import { signalSourceSpec } from '../signals/source.spec.js';
import { calendarSpec } from '../signals/calendar.js';
import { publicJwk } from './jwk.spec.js';

/** Names of issuers, workloads, tasks: lowercase, digits, dashes, dots, colons, slashes (no spaces). */
const name = z.string().regex(/^[a-z0-9][a-z0-9._:/-]{0,127}$/, 'lowercase letters, digits and . _ : / - only');

/** Asymmetric JWS algorithms accepted for identity tokens; symmetric and `none` are never accepted. */
export const IDENTITY_ALGORITHMS = ['ES256', 'ES384', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'EdDSA'] as const;

/** CI issuers' clocks run ahead of ours; a minute of leeway is what GitHub documents as enough. */
export const DEFAULT_LEEWAY_SECONDS = 60;
/** GitHub Actions OIDC tokens live 5-10 minutes; an older one is a replay risk rather than a slow job. */
export const DEFAULT_MAX_TOKEN_AGE_SECONDS = 600;
/** Tokens are short-lived by default (DESIGN.md): five minutes. */
export const DEFAULT_TTL_SECONDS = 300;

export const issuerSpec = z
  .strictObject({
    id: name,
    kind: z.enum(['oidc', 'spiffe']).default('oidc'),
    /** Expected `iss` claim (OIDC). For SPIFFE, the trust domain is matched on the `sub` instead. */
    issuer: z.string().min(1).optional(),
    trust_domain: z.string().regex(/^[a-z0-9.-]+$/).optional(),
    jwks_uri: z.url().optional(),
    jwks: z.strictObject({ keys: z.array(publicJwk).min(1) }).optional(),
    audiences: z.array(z.string().min(1)).min(1),
    algorithms: z.array(z.enum(IDENTITY_ALGORITHMS)).min(1).default(['RS256', 'ES256']),
    leeway_seconds: z.number().int().min(0).max(600).default(DEFAULT_LEEWAY_SECONDS),
    max_token_age_seconds: z.number().int().min(1).max(86_400).default(DEFAULT_MAX_TOKEN_AGE_SECONDS),
    /** Minimum seconds between two JWKS fetches triggered by unknown `kid`s. */
    jwks_cooldown_seconds: z.number().int().min(1).max(3600).default(30),
    /** How long a fetched JWKS is trusted before it is refetched anyway. */
    jwks_max_age_seconds: z.number().int().min(60).max(86_400).default(600),
  })
  .superRefine((v, ctx) => {
    if (!v.jwks_uri === !v.jwks) ctx.addIssue({ code: 'custom', path: ['jwks_uri'], message: 'give exactly one of jwks_uri or jwks' });
    if (v.kind === 'oidc' && !v.issuer) ctx.addIssue({ code: 'custom', path: ['issuer'], message: 'an oidc issuer needs `issuer` (its iss claim)' });
    if (v.kind === 'spiffe' && !v.trust_domain) ctx.addIssue({ code: 'custom', path: ['trust_domain'], message: 'a spiffe issuer needs `trust_domain`' });
  });
export type IssuerSpec = z.infer<typeof issuerSpec>;

/** A claim condition: an exact string, or `{ pattern }` (a regular expression anchored at both ends). */
const claimCondition = z.union([z.string(), z.strictObject({ pattern: z.string().min(1) })]);

const binding = z.strictObject({
  issuer: name,
  subject: z.string().min(1).optional(),
  claims: z.record(z.string(), claimCondition).default({}),
}).superRefine((v, ctx) => {
  if (!v.subject && Object.keys(v.claims).length === 0) {
    ctx.addIssue({ code: 'custom', path: ['subject'], message: 'a binding needs a subject or at least one claim condition' });
  }
});

export const workloadSpec = z
  .strictObject({
    id: name,
    kind: z.enum(['ci', 'agent', 'service']),
    owner: z.string().min(1),
    /** The person who vouches for this workload's access; tasks may refuse their votes on its step-ups. */
    sponsor: z.string().trim().min(1).max(256).optional(),
    description: z.string().optional(),
    status: z.enum(['active', 'suspended', 'retired']).default('active'),
    bindings: z.array(binding).default([]),
    /** Public keys for RFC 7523 client assertions (iss = sub = this workload's id). */
    public_keys: z.array(publicJwk).default([]),
  })
  .superRefine((v, ctx) => {
    if (v.bindings.length === 0 && v.public_keys.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['bindings'], message: 'a workload needs at least one binding or public key' });
    }
  });
export type WorkloadSpec = z.infer<typeof workloadSpec>;

/** One task parameter: a small, strict subset of JSON Schema that maps onto both zod and Cedar types. */
const paramSpec = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('string'),
    required: z.boolean().default(true),
    enum: z.array(z.string()).min(1).optional(),
    pattern: z.string().optional(),
    max_length: z.number().int().positive().default(256),
    description: z.string().optional(),
  }),
  z.strictObject({
    type: z.literal('number'),
    required: z.boolean().default(true),
    integer: z.boolean().default(false),
    minimum: z.number().optional(),
    maximum: z.number().optional(),
    description: z.string().optional(),
  }),
  z.strictObject({ type: z.literal('boolean'), required: z.boolean().default(true), description: z.string().optional() }),
]);
export type ParamSpec = z.infer<typeof paramSpec>;

/** Nobody decided within 15 minutes: the request is stale, and the workload should ask again. */
export const DEFAULT_APPROVAL_EXPIRES_SECONDS = 900;
/** A delegated approver webhook answers within 3 s or the request waits for people. */
export const DEFAULT_APPROVAL_WEBHOOK_TIMEOUT_MS = 3_000;

/** People related to the workload whose votes a task may refuse: self-approval in two shapes. */
export const APPROVAL_FORBID = ['owner', 'sponsor'] as const;
/** By default neither the workload's owner nor its sponsor may approve its requests. */
export const DEFAULT_APPROVAL_FORBID: Array<(typeof APPROVAL_FORBID)[number]> = ['owner', 'sponsor'];

/**
 * What a step-up on this task needs: how many approvals, how long a request stays open, whose votes
 * are refused (`forbid`), and an optional delegated approver (a webhook that answers approve/deny
 * within `timeout_ms`; its URL must be registered under /v1/admin/approval-webhooks, whose secret
 * signs the call).
 */
export const approvalSpec = z.strictObject({
  required: z.number().int().min(1).max(10).default(1),
  expires_in_seconds: z.number().int().min(60).max(7 * 86_400).default(DEFAULT_APPROVAL_EXPIRES_SECONDS),
  /** Absent: DEFAULT_APPROVAL_FORBID. `[]` lets anyone with the approver role vote. */
  forbid: z.array(z.enum(APPROVAL_FORBID)).max(APPROVAL_FORBID.length).optional(),
  /** The earlier spelling: `false` is `forbid: [sponsor]`. Stored documents keep it, so it stays accepted. */
  forbid_owner: z.boolean().optional(),
  auto: z
    .strictObject({
      webhook: z.url({ protocol: /^https?$/ }).max(2048).optional(),
      // Below the server's request timeout: the workload's request waits for this answer.
      timeout_ms: z.number().int().min(100).max(10_000).default(DEFAULT_APPROVAL_WEBHOOK_TIMEOUT_MS),
    })
    .optional(),
}).superRefine((v, ctx) => {
  if (v.forbid !== undefined && v.forbid_owner !== undefined) ctx.addIssue({ code: 'custom', path: ['forbid_owner'], message: 'give forbid or forbid_owner, not both (forbid_owner is the earlier spelling)' });
});
export type ApprovalSpec = z.infer<typeof approvalSpec>;

/** The approval settings of a task that names none. */
export const DEFAULT_APPROVAL: ApprovalSpec = { required: 1, expires_in_seconds: DEFAULT_APPROVAL_EXPIRES_SECONDS };

/** Whose votes a task's step-ups refuse, from `forbid` or its earlier spelling `forbid_owner`. */
export function forbiddenVoters(a: ApprovalSpec): Array<(typeof APPROVAL_FORBID)[number]> {
  if (a.forbid) return [...new Set(a.forbid)];
  return a.forbid_owner === false ? DEFAULT_APPROVAL_FORBID.filter((f) => f !== 'owner') : [...DEFAULT_APPROVAL_FORBID];
}

export const taskSpec = z
  .strictObject({
    name,
    description: z.string().optional(),
    scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'an RFC 6749 scope token')).min(1),
    audience: z.string().min(1),
    default_ttl_seconds: z.number().int().min(10).default(DEFAULT_TTL_SECONDS),
    max_ttl_seconds: z.number().int().min(10).max(86_400).default(3600),
    params: z.record(z.string().regex(/^[a-z_][a-z0-9_]*$/), paramSpec).default({}),
    risk: z.enum(['low', 'medium', 'high']).default('medium'),
    /**
     * The params that name what the task acts on (a destination, an account): `target_is_new` is true
     * when this combination of their values is new for the workload. Absent: all params together.
     */
    target: z.array(z.string()).min(1).optional(),
    /** Workload ids allowed to ask for this task; `*` at the end of an entry matches a prefix. */
    workloads: z.array(z.string().min(1)).min(1),
    /** How many times a token may be used (counted by introspection and use reports); absent = unlimited. */
    max_uses: z.number().int().positive().optional(),
    /**
     * Whether a holder may exchange its token for a narrower child (RFC 8693 delegation), how many steps
     * deep, and which number parameters a child may lower (limits, like a refund's `amount`); every other
     * parameter of a child equals its parent's.
     */
    delegation: z
      .strictObject({
        allowed: z.boolean().default(false),
        max_depth: z.number().int().min(1).max(5).default(1),
        narrowable: z.array(z.string()).optional(),
      })
      .default({ allowed: false, max_depth: 1 }),
    /** Step-up approval settings; absent means DEFAULT_APPROVAL (stored documents stay as written). */
    approval: approvalSpec.optional(),
  })
  .superRefine((v, ctx) => {
    if (v.default_ttl_seconds > v.max_ttl_seconds) {
      ctx.addIssue({ code: 'custom', path: ['default_ttl_seconds'], message: 'must not exceed max_ttl_seconds' });
    }
    for (const [i, p] of (v.target ?? []).entries()) {
      if (!Object.hasOwn(v.params, p)) ctx.addIssue({ code: 'custom', path: ['target', i], message: `"${p}" is not a parameter of this task` });
    }
    for (const [i, p] of (v.delegation.narrowable ?? []).entries()) {
      if (v.params[p]?.type !== 'number') ctx.addIssue({ code: 'custom', path: ['delegation', 'narrowable', i], message: `"${p}" is not a number parameter of this task` });
    }
  });
export type TaskSpec = z.infer<typeof taskSpec>;

/** One Cedar policy file. */
export const policyFile = z.strictObject({ file: z.string().min(1).max(200), text: z.string().max(200_000) });

/** Broker-wide settings that shape broker-derived signals. */
export const settingsSpec = z.strictObject({
  /** How far back "has this workload used this task/target before" looks. */
  novelty_baseline_days: z.number().int().min(1).max(365).default(30),
  /**
   * Identity-token claims policy may read beyond the built-in GitHub Actions ones (e.g. GitLab's
   * `project_path`, `ref_protected`), as `context.identity.claims.<name>`: string values only, each
   * an optional attribute, so a policy guards it with `has`.
   */
  identity_claims: z
    .array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'a claim name: letters, digits and _, not starting with a digit, at most 64'))
    .max(64)
    .default([]),
});

/** One configuration document: what a folder of files (or an admin API call) applies as one version. */
export const configDocument = z.strictObject({
  issuers: z.array(issuerSpec).default([]),
  workloads: z.array(workloadSpec).default([]),
  tasks: z.array(taskSpec).default([]),
  signal_types: z.array(signalTypeSpec).default([]),
  signal_sources: z.array(signalSourceSpec).default([]),
  calendars: z.array(calendarSpec).default([]),
  policies: z.array(policyFile).default([]),
  settings: settingsSpec.default({ novelty_baseline_days: 30, identity_claims: [] }),
});
export type ConfigDocument = z.infer<typeof configDocument>;
