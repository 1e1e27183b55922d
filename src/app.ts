import express from 'express';
import type { Deps } from './deps.js';
import { errorHandler } from './http/errors.js';
import { requestContext } from './http/request-context.js';
import { wellKnownRoutes } from './http/wellknown.routes.js';
import { oauthRoutes } from './http/oauth.routes.js';
import { grantRoutes } from './http/grants.routes.js';
import { configRoutes } from './http/admin/config.routes.js';
import { workloadRoutes } from './http/admin/workloads.routes.js';
import { registryEntryRoutes } from './http/admin/registry-entries.routes.js';
import { adminGrantRoutes } from './http/admin/grants.routes.js';
import { keyRoutes } from './http/admin/keys.routes.js';
import { notFound } from './lib/errors.js';

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
  // Admin routes authenticate and check the role before they parse a body of their own.
  app.use('/v1/admin', configRoutes(deps));
  app.use('/v1/admin', workloadRoutes(deps));
  app.use('/v1/admin', registryEntryRoutes(deps));
  app.use('/v1/admin', adminGrantRoutes(deps));
  app.use('/v1/admin', keyRoutes(deps));
  app.use('/v1', express.json({ limit: BODY_LIMIT, strict: true }));
  app.use(grantRoutes(deps));
  app.use(() => {
    throw notFound('Route');
  });
  app.use(errorHandler(deps.log));
  return app;
}
