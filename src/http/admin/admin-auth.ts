import type { RequestHandler } from 'express';
import type { Deps } from '../../deps.js';
import { TesseraError } from '../../lib/errors.js';
import { bearerToken } from '../bearer.js';
import { findAdminByKey, roleAtLeast, type AdminPrincipal } from './admin-keys.js';
import type { AdminRole } from './admin.table.js';

/**
 * Authenticates an admin key and checks its role before anything reads the body. Workload identity
 * tokens and broker access tokens are not admin keys and never pass.
 */
export function requireRole(deps: Deps, role: AdminRole): RequestHandler {
  return async (req, res, next) => {
    const admin = await findAdminByKey(deps.db, bearerToken(req), deps.clock.now());
    if (!admin) throw new TesseraError(401, 'invalid_token', 'Admin authentication failed.', { logDetail: 'unknown, revoked or expired admin key' });
    if (!roleAtLeast(admin.role, role)) {
      throw new TesseraError(403, 'insufficient_role', `This action needs the ${role} role.`, { logDetail: `${admin.name} is ${admin.role}` });
    }
    res.locals.admin = admin;
    next();
  };
}

/** The authenticated admin of this request (set by requireRole). */
export const adminOf = (res: { locals: Record<string, unknown> }) => res.locals.admin as AdminPrincipal;
