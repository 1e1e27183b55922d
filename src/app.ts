import express from 'express';
import type { Deps } from './deps.js';
import { errorHandler } from './http/errors.js';
import { requestContext } from './http/request-context.js';
import { wellKnownRoutes } from './http/wellknown.routes.js';
import { oauthRoutes } from './http/oauth.routes.js';
import { grantRoutes } from './http/grants.routes.js';
import { signalRoutes } from './http/signals.routes.js';
import { introspectRoutes } from './http/oauth-introspect.routes.js';
import { revokeRoutes } from './http/oauth-revoke.routes.js';
import { statusListRoutes } from './http/status-list.routes.js';
import { metricsRoutes } from './http/metrics.routes.js';
import { useRoutes } from './http/uses.routes.js';
import { approvalRoutes } from './http/approvals.routes.js';
import { adminRoutes } from './http/admin/admin.routes.js';
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
  // The mint path first: most requests are mints, and every router ahead of a route costs each request
  // a pass over its layers. Its routes parse their own bodies, so /v1/admin still never meets this parser.
  app.use(grantRoutes(deps, jsonBody(BODY_LIMIT)));
  app.use(wellKnownRoutes(deps));
  app.use(oauthRoutes(deps));
  app.use(introspectRoutes(deps));
  app.use(revokeRoutes(deps));
  app.use(statusListRoutes(deps));
  app.use(metricsRoutes(deps));
  // Admin routes authenticate and check the role before they parse a body of their own; unknown admin
  // paths end there too, never reaching the workload body parser below.
  app.use('/v1/admin', adminRoutes(deps));
  app.use(signalRoutes(deps));
  app.use(useRoutes(deps));
  app.use('/v1', jsonBody(BODY_LIMIT));
  app.use(approvalRoutes(deps));
  app.use(() => {
    throw notFound('Route');
  });
  app.use(errorHandler(deps));
  return app;
}
