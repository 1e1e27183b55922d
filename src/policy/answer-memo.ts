import type { AuthorizationAnswer, CedarValueJson, Context, EntityJson, Expr, PolicyJson } from '@cedar-policy/cedar-wasm/nodejs';
import { contextPath, hasPath, walkConditions } from './has-check.js';

/**
 * A context leaf that every policy of a set reads only by comparing it with literals of one kind
 * (`context.broker.requests_last_minute > 10`, `context.params.amount.lessThanOrEqual(decimal("100.00"))`),
 * and those literals, sorted and distinct: longs as they are, decimals in ten-thousandths (Cedar's
 * scale), so both compare exactly.
 */
export type ComparedValue =
  | { readonly path: readonly string[]; readonly kind: 'long'; readonly literals: readonly number[] }
  | { readonly path: readonly string[]; readonly kind: 'decimal'; readonly literals: readonly bigint[] };

const COMPARISONS = new Set(['<', '<=', '>', '>=', '==', '!=']);
/** Cedar's decimal comparisons, written `receiver.method(argument)`: the EST lists both as operands. */
const DECIMAL_METHODS = new Set(['lessThan', 'lessThanOrEqual', 'greaterThan', 'greaterThanOrEqual']);

/** A Cedar decimal's text as ten-thousandths; null when it is not one (Cedar takes 1 to 4 fractional digits). */
function tenThousandths(text: unknown): bigint | null {
  const m = typeof text === 'string' ? /^(-?)(\d+)\.(\d{1,4})$/.exec(text) : null;
  if (!m) return null;
  const magnitude = BigInt(m[2]!) * 10_000n + BigInt(m[3]!.padEnd(4, '0'));
  return m[1] ? -magnitude : magnitude;
}

type Literal = { kind: 'long'; value: number } | { kind: 'decimal'; value: bigint };

/** `5`, or `decimal("1.5")`: a literal whose place among others can be told exactly. */
function literalOf(expr: Expr): Literal | null {
  if ('Value' in expr) {
    const v = (expr as { Value: unknown }).Value;
    return typeof v === 'number' && Number.isSafeInteger(v) ? { kind: 'long', value: v } : null;
  }
  if ('decimal' in expr) {
    const args = (expr as { decimal: Expr[] }).decimal;
    const value = args.length === 1 && 'Value' in args[0]! ? tenThousandths((args[0] as { Value: unknown }).Value) : null;
    return value === null ? null : { kind: 'decimal', value };
  }
  return null;
}

/** The two operands of a comparison, or of a decimal comparison method; null for any other expression. */
function comparedOperands(expr: Expr): [Expr, Expr] | null {
  const [op] = Object.keys(expr);
  const body = op === undefined ? undefined : (expr as Record<string, unknown>)[op];
  if (op && COMPARISONS.has(op)) return [(body as { left: Expr }).left, (body as { right: Expr }).right];
  if (op && DECIMAL_METHODS.has(op) && Array.isArray(body) && body.length === 2) return body as [Expr, Expr];
  return null;
}

const isPrefix = (prefix: readonly string[], path: readonly string[]) => prefix.length <= path.length && prefix.every((a, i) => path[i] === a);

/**
 * The context paths these policies read only as one side of a comparison whose other side is a long
 * or decimal literal. Cedar's answer then depends on such a value only through where it lies among
 * the literals: 10 and 11 answer alike against `> 100`. Any other read of the path, or of a record
 * above it (arithmetic, `contains`, a comparison with another path, the whole record), or literals
 * of both kinds, leave it out. A `has` test reads presence only, which the memo key keeps.
 */
export function comparedValues(policies: PolicyJson[]): ComparedValue[] {
  const compared = new Map<string, { path: string[]; literals: Literal[] }>();
  const readOtherwise: string[][] = [];
  for (const policy of policies) {
    walkConditions(policy, (expr) => {
      const operands = comparedOperands(expr);
      if (operands) {
        for (const [side, other] of [operands, [operands[1], operands[0]]] as const) {
          const path = contextPath(side);
          const literal = literalOf(other);
          if (path?.length && literal) {
            const key = JSON.stringify(path);
            if (!compared.has(key)) compared.set(key, { path, literals: [] });
            compared.get(key)!.literals.push(literal);
            return false;
          }
        }
        return true;
      }
      if (hasPath(expr)) return false;
      const path = contextPath(expr);
      if (!path) return true;
      readOtherwise.push(path);
      return false;
    });
  }
  const entries = [...compared.values()];
  // A record above a compared path compared whole is no valid policy; it rules the path out all the same.
  const readAbove = (path: string[]) =>
    readOtherwise.some((other) => isPrefix(other, path)) || entries.some((e) => e.path !== path && isPrefix(e.path, path));
  const distinct = <T extends number | bigint>(values: T[]) => [...new Set(values)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return entries.flatMap(({ path, literals }): ComparedValue[] => {
    if (readAbove(path)) return [];
    const longs = literals.flatMap((l) => (l.kind === 'long' ? [l.value] : []));
    const decimals = literals.flatMap((l) => (l.kind === 'decimal' ? [l.value] : []));
    if (longs.length && decimals.length) return [];
    return longs.length ? [{ path, kind: 'long', literals: distinct(longs) }] : [{ path, kind: 'decimal', literals: distinct(decimals) }];
  });
}

/** Where `value` lies among sorted `literals`: below the first, equal to it, between it and the next, … */
function interval<T extends number | bigint>(value: T, literals: readonly T[]): number {
  let below = 0;
  for (const l of literals) {
    if (l === value) return 2 * below + 1;
    if (l > value) break;
    below++;
  }
  return 2 * below;
}

/** The interval of a context value of the compared kind; undefined (keep it exact) for anything else. */
function intervalOf(compared: ComparedValue, value: CedarValueJson): number | undefined {
  if (compared.kind === 'long') return typeof value === 'number' ? interval(value, compared.literals) : undefined;
  const extn = typeof value === 'object' && value !== null && '__extn' in value ? (value.__extn as { fn?: unknown; arg?: unknown }) : undefined;
  const scaled = extn?.fn === 'decimal' ? tenThousandths(extn.arg) : null;
  return scaled === null ? undefined : interval(scaled, compared.literals);
}

/** `record` with the value at `path` replaced by its interval, copying only the records along the path. */
function replaced(record: Record<string, CedarValueJson>, compared: ComparedValue, at = 0): Record<string, CedarValueJson> {
  const attr = compared.path[at]!;
  if (!Object.hasOwn(record, attr)) return record;
  const value = record[attr]!;
  if (at === compared.path.length - 1) {
    const i = intervalOf(compared, value);
    return i === undefined ? record : { ...record, [attr]: { interval: i } };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return record;
  return { ...record, [attr]: replaced(value as Record<string, CedarValueJson>, compared, at + 1) };
}

/** What one Cedar call is asked, apart from its action and resource, which a task's plan fixes. */
export interface MemoCall {
  principal: { type: string; id: string };
  context: Context;
  entities: EntityJson[];
}

/** Answers kept per policy version, across its tasks; the least recently used goes first when full. */
const CAPACITY = 4_096;
/**
 * A question this long (a long purpose or many parameters read as they are) is answered but not kept:
 * it is unlikely to be asked again, and the bound keeps the keys of a full memo under 16 MB.
 */
const MAX_KEY_CHARS = 2_048;

/**
 * The memo key of one Cedar call to a task's plan (named by `planId`): everything Cedar is asked, with
 * each value in `compared` replaced by the interval it falls in among its literals, which is all
 * Cedar can tell apart of it.
 */
export function memoKey(planId: string, compared: readonly ComparedValue[], call: MemoCall): string {
  let context = call.context as Record<string, CedarValueJson>;
  for (const c of compared) context = replaced(context, c);
  return JSON.stringify([planId, call.principal.id, call.entities, context]);
}

/**
 * Cedar's answers for one preparsed policy version, by memo key. Cedar is a pure function of the
 * policies, the entities and the context (it has no clock: time reaches a policy only through the
 * context), so an answer kept for the same key is the answer Cedar would give again, and a context
 * whose counters moved keeps its answer until a count crosses a literal.
 */
export class AnswerMemo {
  readonly #answers = new Map<string, AuthorizationAnswer>();
  constructor(private readonly capacity = CAPACITY) {}

  /** The answer kept under `key`, or `ask()`'s, kept unless the key is too long to be worth it. */
  answer(key: string, ask: () => AuthorizationAnswer): { answer: AuthorizationAnswer; kept: boolean } {
    const kept = this.#answers.get(key);
    if (kept) {
      // Most recently used last, so a stream of one-off questions evicts them before the usual ones.
      this.#answers.delete(key);
      this.#answers.set(key, kept);
      return { answer: kept, kept: true };
    }
    const answer = ask();
    if (key.length > MAX_KEY_CHARS) return { answer, kept: false };
    if (this.#answers.size >= this.capacity) this.#answers.delete(this.#answers.keys().next().value!);
    this.#answers.set(key, answer);
    return { answer, kept: false };
  }

  get size(): number {
    return this.#answers.size;
  }
}
