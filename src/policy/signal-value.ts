import { signalKind } from './cedar-schema.js';
import { cedarValueProblem } from './cedar-value.js';
import type { SignalTypeSpec } from './signal-type.spec.js';

/**
 * Why `value` is not a value of this signal type, or undefined when it is: its JSON type, its enum,
 * and whether Cedar can hold it exactly. Ingestion refuses such a value; a stored one that no longer
 * fits (the type changed since) is absent to policy.
 */
export function signalValueProblem(type: Pick<SignalTypeSpec, 'value'>, value: unknown): string | undefined {
  const problem = cedarValueProblem(signalKind(type.value), value);
  if (problem) return problem;
  if (type.value.type === 'string' && type.value.enum && !type.value.enum.includes(value as string)) {
    return `must be one of: ${type.value.enum.join(', ')}`;
  }
  return undefined;
}
