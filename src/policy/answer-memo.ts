import type { AuthorizationAnswer, CedarValueJson, Context, EntityJson, Expr, PolicyJson } from '@cedar-policy/cedar-wasm/nodejs';
import { contextPath, hasPath, walkConditions } from './has-check.js';

/**
 * A context leaf that every policy of a set reads only by comparing it with integer literals
 * (`context.broker.requests_last_minute > 10`), and those literals, sorted and distinct.
 */
export interface ComparedLong {
  readonly path: readonly string[];
  readonly literals: readonly number[];
}

const COMPARISONS = new Set(['<', '<=', '>', '>=', '==', '!=']);

const integerLiteral = (expr: Expr): number | null => {
  const v = 'Value' in expr ? (expr as { Value: unknown }).Value : undefined;
  return typeof v === 'number' && Number.isInteger(v) ? v : null;
};

const isPrefix = (prefix: readonly string[], path: readonly string[]) => prefix.length <= path.length && prefix.every((a, i) => path[i] === a);

/**
 * The context paths these policies read only as one side of a comparison whose other side is an
 * integer literal. Cedar's answer then depends on such a value only through where it lies among
 * the literals: 10 and 11 answer alike against `> 100`. Any other read of the path, or of a record
 * above it (arithmetic, `contains`, an extension call, a comparison with another path, the whole
 * record), leaves it out. A `has` test reads presence only, which the memo key keeps.
 */
export function comparedLongs(policies: PolicyJson[]): ComparedLong[] {
  const compared = new Map<string, { path: string[]; literals: Set<number> }>();
  const readOtherwise: string[][] = [];
  for (const policy of policies) {
    walkConditions(policy, (expr) => {
      const [op] = Object.keys(expr);
      if (op && COMPARISONS.has(op)) {
        const { left, right } = (expr as Record<string, { left: Expr; right: Expr }>)[op]!;
        for (const [side, other] of [[left, right], [right, left]] as const) {
          const path = contextPath(side);
          const literal = integerLiteral(other);
          if (path?.length && literal !== null) {
            const key = JSON.stringify(path);
            if (!compared.has(key)) compared.set(key, { path, literals: new Set() });
            compared.get(key)!.literals.add(literal);
            return false;
          }
        }
        return true;
      }
      if ('has' in expr && hasPath((expr as { has: { left: Expr; attr: string | string[] } }).has)) return false;
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
  return entries
    .filter(({ path }) => !readAbove(path))
    .map(({ path, literals }) => ({ path, literals: [...literals].sort((a, b) => a - b) }));
}

/** Where `value` lies among sorted `literals`: below the first, equal to it, between it and the next, … */
function interval(value: number, literals: readonly number[]): number {
  let below = 0;
  for (const l of literals) {
    if (l === value) return 2 * below + 1;
    if (l > value) break;
    below++;
  }
  return 2 * below;
}

/** `record` with the value at `path` replaced, copying only the records along the path. */
function replaced(record: Record<string, CedarValueJson>, path: readonly string[], at: number, to: (v: number) => CedarValueJson): Record<string, CedarValueJson> {
  const attr = path[at]!;
  if (!Object.hasOwn(record, attr)) return record;
  const value = record[attr]!;
  if (at === path.length - 1) return typeof value === 'number' ? { ...record, [attr]: to(value) } : record;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return record;
  return { ...record, [attr]: replaced(value as Record<string, CedarValueJson>, path, at + 1, to) };
}

/** What one Cedar call is asked, apart from its action and resource, which a task's plan fixes. */
export interface MemoCall {
  principal: { type: string; id: string };
  context: Context;
  entities: EntityJson[];
}

/** Answers kept per plan; the least recently used goes first when full. A key is a few hundred bytes. */
const CAPACITY = 4_096;


/**
 * Cedar's answers for one task's preparsed policies, by what the call asked. Cedar is a pure function
 * of the policies, the entities and the context (it has no clock: time reaches a policy only through
 * the context), so an answer kept for an identical call is the answer Cedar would give again. Values
 * in `compared` enter the key as the interval they fall in among their literals, which is all Cedar
 * can tell apart of them, so a context whose counters moved keeps its answer until a count crosses a
 * literal.
 */
export class AnswerMemo {
  readonly #answers = new Map<string, AuthorizationAnswer>();
  constructor(
    readonly compared: readonly ComparedLong[],
    private readonly capacity = CAPACITY,
  ) {}

  key(call: MemoCall): string {
    let context = call.context as Record<string, CedarValueJson>;
    for (const { path, literals } of this.compared) context = replaced(context, path, 0, (v) => ({ interval: interval(v, literals) }));
    return JSON.stringify([call.principal.id, call.entities, context]);
  }

  /** The answer kept under `key`, or `ask()`'s, kept unless the memo is full of others. */
  answer(key: string, ask: () => AuthorizationAnswer): { answer: AuthorizationAnswer; kept: boolean } {
    const kept = this.#answers.get(key);
    if (kept) {
      // Most recently used last, so a stream of one-off questions evicts them before the usual ones.
      this.#answers.delete(key);
      this.#answers.set(key, kept);
      return { answer: kept, kept: true };
    }
    const answer = ask();
    if (this.#answers.size >= this.capacity) this.#answers.delete(this.#answers.keys().next().value!);
    this.#answers.set(key, answer);
    return { answer, kept: false };
  }

  get size(): number {
    return this.#answers.size;
  }
}
