import { ConfigError, validateConfig } from '../../config/load-folder.js';
import type { ConfigDocument } from '../../config/spec.js';
import { invalidRequest } from '../../lib/errors.js';

/** Validates a configuration document an admin request brings or names: a ConfigError is a 400 naming each field. */
export function validConfigOr400(raw: unknown, message: string): ConfigDocument {
  try {
    return validateConfig(raw);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw invalidRequest(message, err.problems.map((p) => ({ field: p.split(':')[0]!, reason: p.slice(p.indexOf(':') + 1).trim() })));
  }
}
