import type { RequestHandler, Router } from 'express';
import type { Deps } from '../../deps.js';
import { requireRole } from './admin-auth.js';
import type { AdminRoute } from './route-roles.js';
import { jsonBody } from '../body.js';

/**
 * Mounts one admin route in the fixed order: authenticate and check the role, then (only for routes
 * that take one) parse the body with the route's own limit, then the handler. A caller without the role
 * is refused before a byte of the body is read.
 */
export function mountAdminRoute(r: Router, deps: Deps, route: AdminRoute, handler: RequestHandler): void {
  const steps: RequestHandler[] = [requireRole(deps, route.role)];
  if (route.body) steps.push(jsonBody(route.body));
  r[route.method](route.path, ...steps, handler);
}
