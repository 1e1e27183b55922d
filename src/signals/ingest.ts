import { z } from 'zod';
import type { RegistrySnapshot } from '../config/registry.js';
import type { Database } from '../db/database.js';
import { invalidRequest, type FieldIssue } from '../lib/errors.js';
import { fieldIssues } from '../lib/validation.js';
import { signalValueProblem } from '../policy/index.js';
import { subjectProblem } from './subject.js';
import { insertSignals, type NewSignal } from './signal.repository.js';
import { recordAudit } from '../audit/audit-outbox.js';
import type { SignalSourceSpec } from './source.spec.js';

/** A batch is small on purpose: sources push changes, not history. */
export const MAX_SIGNAL_BATCH = 500;
/** An observation from the future (beyond clock drift) is a bug or a forgery. */
const FUTURE_LEEWAY_MS = 60_000;

export const signalBatch = z.strictObject({
  signals: z
    .array(
      z.strictObject({
        type: z.string().min(1).max(64),
        subject: z.string().min(1).max(256),
        value: z.union([z.string().max(1024), z.number(), z.boolean()]),
        observed_at: z.iso.datetime({ offset: true }),
        expires_at: z.iso.datetime({ offset: true }).optional(),
      }),
    )
    .min(1)
    .max(MAX_SIGNAL_BATCH),
});
export type SignalBatch = z.infer<typeof signalBatch>;

/**
 * Validates every signal of a batch against its registered type and the source's rights, then stores
 * the batch atomically. One bad signal rejects the whole batch, naming each bad entry and why.
 */
export async function ingestSignals(
  db: Database,
  registry: RegistrySnapshot,
  source: SignalSourceSpec,
  input: unknown,
  now: Date,
  requestId: string | null = null,
): Promise<NewSignal[]> {
  const parsed = signalBatch.safeParse(input);
  if (!parsed.success) throw invalidRequest('The signal batch is invalid.', fieldIssues(parsed.error));
  const issues: FieldIssue[] = [];
  const accepted: NewSignal[] = [];
  parsed.data.signals.forEach((s, i) => {
    const at = `signals.${i}`;
    const type = registry.signalTypes.get(s.type);
    if (!type) return void issues.push({ field: `${at}.type`, reason: `signal type "${s.type}" is not registered` });
    if (!type.sources.includes(source.id)) {
      return void issues.push({ field: `${at}.type`, reason: `source "${source.id}" may not send ${s.type}` });
    }
    const badSubject = subjectProblem(type, s.subject, registry);
    if (badSubject) return void issues.push({ field: `${at}.subject`, reason: badSubject });
    const bad = signalValueProblem(type, s.value);
    if (bad) return void issues.push({ field: `${at}.value`, reason: bad });
    const observed = new Date(s.observed_at);
    if (observed.getTime() > now.getTime() + FUTURE_LEEWAY_MS) return void issues.push({ field: `${at}.observed_at`, reason: 'is in the future' });
    if (now.getTime() - observed.getTime() > type.max_age_seconds * 1000) {
      return void issues.push({ field: `${at}.observed_at`, reason: `older than the type's max age (${type.max_age_seconds}s)` });
    }
    const expires = s.expires_at ? new Date(s.expires_at) : null;
    if (expires && expires <= observed) return void issues.push({ field: `${at}.expires_at`, reason: 'must be after observed_at' });
    accepted.push({ type: s.type, subject: s.subject, value: s.value, source: source.id, observed_at: observed, expires_at: expires });
  });
  if (issues.length) throw invalidRequest('Some signals were refused; none were stored.', issues);
  await db.transaction().execute(async (trx) => {
    await insertSignals(trx, accepted, now);
    await recordAudit(
      trx,
      {
        actor: `source:${source.id}`,
        action: 'signals.ingested',
        outcome: 'success',
        request_id: requestId,
        data: { count: accepted.length, signals: accepted.map((s) => ({ type: s.type, subject: s.subject, value: s.value, observed_at: s.observed_at.toISOString() })) },
      },
      now,
    );
  });
  return accepted;
}
