import { z } from 'zod';

/** Signal names become Cedar attribute names (`context.signals.runner_trust`), so they are identifiers. */
const snakeCase = z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'snake_case: lowercase letters, digits and _');

/**
 * The value a signal carries. A number is a Cedar `decimal` unless `integer` is set (then a `Long`),
 * the same rule as task parameters, so `0.7` never silently truncates to `0`.
 */
const signalValue = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('string'), enum: z.array(z.string()).min(1).optional() }),
  z.strictObject({ type: z.literal('number'), integer: z.boolean().default(false) }),
  z.strictObject({ type: z.literal('boolean') }),
]);
export type SignalValueSpec = z.infer<typeof signalValue>;

/** A registered signal type: only these reach policy, and each says why it may influence access. */
export const signalTypeSpec = z
  .strictObject({
  name: snakeCase,
  description: z.string().min(1),
  /** Governance over which signals may change an answer: the case for letting this one do so. */
  reason: z.string().min(1),
  subject_kind: z.enum(['workload', 'host', 'issuer', 'global']),
  value: signalValue,
  /** Signal source ids allowed to push this type. */
  sources: z.array(z.string().min(1)).min(1),
  /** Older observations are absent to policy, never assumed. */
  max_age_seconds: z.number().int().positive().max(7 * 86_400),
  /**
   * For `host` signals: the verified identity-token claim that names the host or runner the request
   * runs on. It must come from the token, never from the request, or a workload could borrow a
   * healthy host's posture.
   */
  subject_claim: z.string().min(1).optional(),
  })
  .superRefine((v, ctx) => {
    if (v.subject_kind === 'host' && !v.subject_claim) {
      ctx.addIssue({ code: 'custom', path: ['subject_claim'], message: 'a host signal needs subject_claim (the identity claim naming the host)' });
    }
  });
export type SignalTypeSpec = z.infer<typeof signalTypeSpec>;
