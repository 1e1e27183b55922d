import type { CedarValueJson, Context, Expr, PolicyJson } from '@cedar-policy/cedar-wasm/nodejs';
import { contextPath, hasPath, walkConditions } from './has-check.js';

/** The context a set of policies reads: `true` takes the whole value there, a record only the named parts. */
export type ContextReads = true | { [attr: string]: ContextReads };

/** What a set of policies needs from a request, so only that crosses into Cedar. */
export interface RequestReads {
  context: ContextReads;
  /** Whether any condition reads the principal (its attributes): only then is its entity passed. */
  principal: boolean;
  /** Likewise for the resource (the task entity and its risk). */
  resource: boolean;
}

function add(tree: ContextReads, path: string[]): ContextReads {
  if (tree === true) return true;
  if (!path.length) return true;
  const [head, ...rest] = path as [string, ...string[]];
  return { ...tree, [head]: add(tree[head] ?? {}, rest) };
}

/**
 * The context paths and entities these policies' conditions can read. A path read as a whole
 * (`context.broker.calendars` compared as a record, `context` itself) takes everything below it.
 * A `has` test reads the attribute it names, so its absence is passed on faithfully.
 */
export function requestReads(policies: PolicyJson[]): RequestReads {
  const reads: RequestReads = { context: {}, principal: false, resource: false };
  for (const policy of policies) {
    walkConditions(policy, (expr: Expr) => {
      if ('Var' in expr) {
        if (expr.Var === 'principal') reads.principal = true;
        if (expr.Var === 'resource') reads.resource = true;
      }
      const path = contextPath(expr) ?? hasPath(expr);
      if (!path) return true;
      reads.context = add(reads.context, path);
      return false;
    });
  }
  return reads;
}

/** Whether `reads` covers `path`: the path itself, something below it, or a whole value above it. */
export function readsPath(reads: ContextReads, path: readonly string[]): boolean {
  let tree: ContextReads | undefined = reads;
  for (const attr of path) {
    if (tree === true) return true;
    tree = tree[attr];
    if (tree === undefined) return false;
  }
  return true;
}

/** A Cedar record (not a set, an extension value or an entity reference). */
const isRecord = (v: CedarValueJson): boolean => typeof v === 'object' && v !== null && !Array.isArray(v) && !('__extn' in v) && !('__entity' in v);

function pick(value: CedarValueJson, reads: ContextReads): CedarValueJson {
  if (reads === true || !isRecord(value)) return value;
  const record = value as Record<string, CedarValueJson>;
  const out: Record<string, CedarValueJson> = {};
  for (const [k, sub] of Object.entries(reads)) if (Object.hasOwn(record, k)) out[k] = pick(record[k]!, sub);
  return out;
}

/** The part of a context the policies read; an attribute absent from `context` stays absent. */
export function pickContext(context: Context, reads: ContextReads): Context {
  return pick(context as CedarValueJson, reads) as Context;
}
