import { z } from 'zod';
import type { ParamSpec, TaskSpec } from './spec.js';
import { cedarValueProblem, paramKind } from '../policy/index.js';

function paramSchema(spec: ParamSpec): z.ZodType {
  switch (spec.type) {
    case 'string': {
      let s = z.string().max(spec.max_length);
      if (spec.pattern) s = s.regex(new RegExp(`^(?:${spec.pattern})$`), `must match ${spec.pattern}`);
      return spec.enum ? s.refine((v) => spec.enum!.includes(v), `must be one of: ${spec.enum.join(', ')}`) : s;
    }
    case 'number': {
      let n = z.number();
      if (spec.integer) n = n.int();
      if (spec.minimum !== undefined) n = n.min(spec.minimum);
      if (spec.maximum !== undefined) n = n.max(spec.maximum);
      // A number Cedar cannot hold exactly (more than 4 decimals, beyond its range) would make the
      // evaluation fail, a deny the caller cannot act on: refuse it here, naming the param.
      const kind = paramKind(spec);
      return n.superRefine((v, ctx) => {
        const problem = cedarValueProblem(kind, v);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      });
    }
    case 'boolean':
      return z.boolean();
  }
}

/** A strict zod schema for a task's parameters, built once per registry snapshot. */
export function compileParamsSchema(task: TaskSpec): z.ZodType<Record<string, unknown>> {
  const shape: Record<string, z.ZodType> = {};
  for (const [name, spec] of Object.entries(task.params)) {
    shape[name] = spec.required ? paramSchema(spec) : paramSchema(spec).optional();
  }
  return z.strictObject(shape) as unknown as z.ZodType<Record<string, unknown>>;
}
