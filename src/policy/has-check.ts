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
function contextPath(expr: Expr): string[] | null {
  if ('Var' in expr) return expr.Var === 'context' ? [] : null;
  if ('.' in expr) {
    const dot = (expr as { '.': { left: Expr; attr: string } })['.'];
    const left = contextPath(dot.left);
    return left && [...left, dot.attr];
  }
  return null;
}

function walk(expr: unknown, visit: (has: { left: Expr; attr: string | string[] }) => void): void {
  if (!expr || typeof expr !== 'object') return;
  for (const [op, body] of Object.entries(expr)) {
    if (op === 'Value' || op === 'Var' || op === 'Slot') continue;
    if (op === 'has') visit(body as { left: Expr; attr: string | string[] });
    // A record literal's keys are attribute names, not operators: only its values are expressions.
    const children = op === 'Record' ? Object.values(body as object) : Array.isArray(body) ? body : Object.values(body ?? {});
    for (const child of children) walk(child, visit);
  }
}

/**
 * The `has` tests of a policy that name a context attribute no action declares. Cedar types such a
 * test as `false` and accepts the policy, so `context.signals has misspelt && …` would never fire;
 * for a forbid that is a silent hole, so tessera refuses it like a read of an unregistered signal.
 */
export function unknownHasPaths(policy: PolicyJson, shape: Shape): string[] {
  const unknown: string[] = [];
  for (const clause of policy.conditions) {
    walk(clause.body, ({ left, attr }) => {
      const base = contextPath(left);
      if (!base) return;
      const path = [...base, ...(Array.isArray(attr) ? attr : [attr])];
      let node: Shape | undefined = shape;
      for (const name of path) node = node && Object.hasOwn(node, name) ? node[name] : undefined;
      if (!node) unknown.push(['context', ...path].join('.'));
    });
  }
  return unknown;
}
