import { Router } from 'express';
import type { Deps } from '../../deps.js';
import { notFound } from '../../lib/errors.js';
import { MOUNT } from '../http.metrics.js';
import { requireRole } from './admin-auth.js';
import { configRoutes } from './config.routes.js';
import { decisionRoutes } from './decisions.routes.js';
import { auditRoutes } from './audit.routes.js';
import { revocationRoutes } from './revocation.routes.js';
import { signingKeyRoutes } from './signing-keys.routes.js';
import { resourceServerRoutes } from './resource-servers.routes.js';
import { webhookRoutes } from './webhooks.routes.js';
import { workloadRoutes } from './workloads.routes.js';
import { registryEntryRoutes } from './registry-entries.routes.js';
import { adminGrantRoutes } from './grants.routes.js';
import { keyRoutes } from './keys.routes.js';
import { adminApprovalRoutes } from './approvals.routes.js';
import { documentEntryRoutes } from './document-entries.routes.js';

/**
 * Everything under /v1/admin, each route mounted from ADMIN_ROUTES (role first, then its own body
 * limit). A path no route matched is answered here, authenticated, before the workload API's body
 * parser could read a byte of it: 401 without a valid admin credential, else 404.
 */
export function adminRoutes(deps: Deps): Router {
  const r = Router();
  r.use((req, res, next) => {
    res.locals[MOUNT] = req.baseUrl;
    next();
  });
  for (const routes of [
    configRoutes,
    decisionRoutes,
    auditRoutes,
    revocationRoutes,
    signingKeyRoutes,
    resourceServerRoutes,
    webhookRoutes,
    workloadRoutes,
    registryEntryRoutes,
    adminGrantRoutes,
    keyRoutes,
    adminApprovalRoutes,
    documentEntryRoutes,
  ]) {
    r.use(routes(deps));
  }
  r.use(requireRole(deps, 'viewer'), () => {
    throw notFound('Route');
  });
  return r;
}
