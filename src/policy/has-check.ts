import type { Expr, PolicyJson, SchemaJson, Type } from '@cedar-policy/cedar-wasm/nodejs';

/** Attribute names reachable from `context`, merged over every action: a leaf is an empty object. */
type Shape = { [attr: string]: Shape };

function resolve(type: Type<string>, common: Record<string, Type<string>>): Type<string> {
  return type.type in common ? common[type.type]! : type;
}

function merge(into: Shape, type: Type<string>, common: Record<string, Type<string>>): void {
  const t = resolve(type, common);
  if (t.type !== 'Record' || !('attributes' in t)) return;
  for (const [name, attr] of Object.entries(t.attributes)) merge((into[name] ??= {}), attr, common);
}

/** Every context attribute path any action declares. */
export function contextShape(schema: SchemaJson<string>): Shape {
  const ns = schema['']!;
  const common = (ns.commonTypes ?? {}) as Record<string, Type<string>>;
  const shape: Shape = {};
  for (const action of Object.values(ns.actions)) if (action.appliesTo?.context) merge(shape, action.appliesTo.context, common);
  return shape;
}

/** `context.a.b` as ['a', 'b']; null when the expression is not an attribute path from `context`. */
export function contextPath(expr: Expr): string[] | null {
  if ('Var' in expr) return expr.Var === 'context' ? [] : null;
  if ('.' in expr) {
    const dot = (expr as { '.': { left: Expr; attr: string } })['.'];
    const left = contextPath(dot.left);
    return left && [...left, dot.attr];
  }
  return null;
}

/** The attribute path `expr` tests with `has`, when it is a `has` test whose left side is a path from `context`. */
export function hasPath(expr: Expr): string[] | null {
  if (!('has' in expr)) return null;
  const has = (expr as { has: { left: Expr; attr: string | string[] } }).has;
  const base = contextPath(has.left);
  return base && [...base, ...(Array.isArray(has.attr) ? has.attr : [has.attr])];
}

/**
 * Visits every expression of a policy's conditions, outermost first; `visit` returns false to skip
 * the expression's children.
 */
export function walkConditions(policy: PolicyJson, visit: (expr: Expr) => boolean): void {
  const walk = (expr: unknown): void => {
    if (!expr || typeof expr !== 'object' || !visit(expr as Expr)) return;
    for (const [op, body] of Object.entries(expr)) {
      if (op === 'Value' || op === 'Var' || op === 'Slot') continue;
      // A record literal's keys are attribute names, not operators: only its values are expressions.
      const children = op === 'Record' ? Object.values(body as object) : Array.isArray(body) ? body : Object.values(body ?? {});
      for (const child of children) walk(child);
    }
  };
  for (const clause of policy.conditions) walk(clause.body);
}

/**
 * The `has` tests of a policy that name a context attribute no action declares. Cedar types such a
 * test as `false` and accepts the policy, so `context.signals has misspelt && …` would never fire;
 * for a forbid that is a silent hole, so tessera refuses it like a read of an unregistered signal.
 */
export function unknownHasPaths(policy: PolicyJson, shape: Shape): string[] {
  const unknown: string[] = [];
  walkConditions(policy, (expr) => {
    const path = hasPath(expr);
    if (!path) return true;
    let node: Shape | undefined = shape;
    for (const name of path) node = node && Object.hasOwn(node, name) ? node[name] : undefined;
    if (!node) unknown.push(['context', ...path].join('.'));
    return true;
  });
  return unknown;
}
