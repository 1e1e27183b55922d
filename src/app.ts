import express from 'express';
import type { Deps } from './deps.js';
import { errorHandler } from './http/errors.js';
import { requestContext } from './http/request-context.js';
import { wellKnownRoutes } from './http/wellknown.routes.js';
import { oauthRoutes } from './http/oauth.routes.js';
import { grantRoutes } from './http/grants.routes.js';
import { configRoutes } from './http/admin/config.routes.js';
import { signalRoutes } from './http/signals.routes.js';
import { decisionRoutes } from './http/admin/decisions.routes.js';
import { auditRoutes } from './http/admin/audit.routes.js';
import { introspectRoutes } from './http/oauth-introspect.routes.js';
import { revokeRoutes } from './http/oauth-revoke.routes.js';
import { statusListRoutes } from './http/status-list.routes.js';
import { metricsRoutes } from './http/metrics.routes.js';
import { revocationRoutes } from './http/admin/revocation.routes.js';
import { signingKeyRoutes } from './http/admin/signing-keys.routes.js';
import { resourceServerRoutes } from './http/admin/resource-servers.routes.js';
import { webhookRoutes } from './http/admin/webhooks.routes.js';
import { workloadRoutes } from './http/admin/workloads.routes.js';
import { registryEntryRoutes } from './http/admin/registry-entries.routes.js';
import { adminGrantRoutes } from './http/admin/grants.routes.js';
import { keyRoutes } from './http/admin/keys.routes.js';
import { useRoutes } from './http/uses.routes.js';
import { approvalRoutes } from './http/approvals.routes.js';
import { adminApprovalRoutes } from './http/admin/approvals.routes.js';
import { documentEntryRoutes } from './http/admin/document-entries.routes.js';
import { notFound } from './lib/errors.js';
import { jsonBody } from './http/body.js';

/** Workload request bodies are small JSON objects; anything larger is refused before parsing. */
const BODY_LIMIT = '64kb';

/** The broker's express app, without listen(): main and tests drive it. */
export function createApp(deps: Deps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestContext(deps.log));
  app.use(wellKnownRoutes(deps));
  app.use(oauthRoutes(deps));
  app.use(introspectRoutes(deps));
  app.use(revokeRoutes(deps));
  app.use(statusListRoutes(deps));
  app.use(metricsRoutes(deps));
  // Admin routes authenticate and check the role before they parse a body of their own.
  app.use('/v1/admin', configRoutes(deps));
  app.use('/v1/admin', decisionRoutes(deps));
  app.use('/v1/admin', auditRoutes(deps));
  app.use(signalRoutes(deps));
  app.use('/v1/admin', revocationRoutes(deps));
  app.use('/v1/admin', signingKeyRoutes(deps));
  app.use('/v1/admin', resourceServerRoutes(deps));
  app.use('/v1/admin', webhookRoutes(deps));
  app.use('/v1/admin', workloadRoutes(deps));
  app.use('/v1/admin', registryEntryRoutes(deps));
  app.use('/v1/admin', adminGrantRoutes(deps));
  app.use('/v1/admin', keyRoutes(deps));
  app.use('/v1/admin', adminApprovalRoutes(deps));
  app.use('/v1/admin', documentEntryRoutes(deps));
  app.use(useRoutes(deps));
  app.use('/v1', jsonBody(BODY_LIMIT));
  app.use(grantRoutes(deps));
  app.use(approvalRoutes(deps));
  app.use(() => {
    throw notFound('Route');
  });
  app.use(errorHandler(deps));
  return app;
}
