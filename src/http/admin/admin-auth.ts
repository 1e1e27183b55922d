import type { RequestHandler } from 'express';
import type { Deps } from '../../deps.js';
import { TesseraError } from '../../lib/errors.js';
import { bearerToken } from '../bearer.js';
import { ADMIN_KEY_PREFIX, findAdminByKey, roleAtLeast, type AdminPrincipal } from './admin-keys.js';
import type { AdminRole } from './admin.table.js';

/**
 * The admin a credential proves: an admin key (`tsk_…`, looked up by its hash), or a JWT from a trusted
 * human IdP. Workload identity tokens and broker access tokens are neither and never pass.
 */
async function authenticateAdmin(deps: Deps, credential: string): Promise<AdminPrincipal> {
  if (!credential.startsWith(ADMIN_KEY_PREFIX)) return deps.adminIssuers.authenticate(credential, { brokerIssuer: deps.issuer, registry: deps.registry.snapshot });
  const admin = await findAdminByKey(deps.db, credential, deps.clock.now());
  if (!admin) throw new TesseraError(401, 'invalid_token', 'Admin authentication failed.', { logDetail: 'unknown, revoked or expired admin key' });
  return admin;
}

/** Authenticates the admin and checks its role before anything reads the body. */
export function requireRole(deps: Deps, role: AdminRole): RequestHandler {
  return async (req, res, next) => {
    const admin = await authenticateAdmin(deps, bearerToken(req));
    if (!roleAtLeast(admin.role, role)) {
      throw new TesseraError(403, 'insufficient_role', `This action needs the ${role} role.`, { logDetail: `${admin.name} is ${admin.role}` });
    }
    res.locals.admin = admin;
    next();
  };
}

/** The authenticated admin of this request (set by requireRole). */
export const adminOf = (res: { locals: Record<string, unknown> }) => res.locals.admin as AdminPrincipal;
