import { z } from 'zod';

const value = z.union([z.string(), z.number(), z.boolean()]);
const count = z.number().int().min(0);

/**
 * One policy test case, as written in a `*.yaml` file of a policy test folder. Omitted parts of the
 * request take neutral values (see policy-test.ts) so a case states only what it is about.
 */
export const policyTestCase = z.strictObject({
  name: z.string().min(1),
  request: z.strictObject({
    workload: z.strictObject({ id: z.string().min(1), kind: z.string().min(1), owner: z.string().min(1).default('policy-test') }),
    /** A task name (its registered risk is used) or `{ name, risk }` to test another risk. */
    task: z.union([z.string().min(1), z.strictObject({ name: z.string().min(1), risk: z.string().min(1).optional() })]),
    params: z.record(z.string(), value).default({}),
    purpose: z.string().default(''),
    identity: z
      .strictObject({
        issuer: z.string().optional(),
        subject: z.string().optional(),
        token_age_seconds: count.optional(),
        claims: z.record(z.string(), z.string()).optional(),
      })
      .default({}),
    signals: z.record(z.string(), value).default({}),
    broker: z
      .strictObject({
        requests_last_minute: count.optional(),
        requests_last_hour: count.optional(),
        active_grants: count.optional(),
        task_is_new: z.boolean().optional(),
        target_is_new: z.boolean().optional(),
        new_params: z.array(z.string()).optional(),
        calendars: z.record(z.string(), z.boolean()).optional(),
      })
      .default({}),
  }),
  expect: z.strictObject({
    outcome: z.enum(['allow', 'step_up', 'deny']),
    /** A number asserts that TTL cap; `null` asserts that no policy caps the TTL. */
    max_ttl_seconds: z.number().int().positive().nullable().optional(),
    /** Each entry must occur (as a substring) in one of the decision's reasons. */
    reasons_include: z.array(z.string().min(1)).optional(),
  }),
});
export type PolicyTestCase = z.infer<typeof policyTestCase>;
/** What a test file holds before defaults are applied. */
export type PolicyTestCaseInput = z.input<typeof policyTestCase>;
