import type { Request, Response } from 'express';
import { metrics } from '../lib/metrics.js';

/**
 * Seconds from a request reaching the app to its response being handed to the socket (or to its
 * client going away: status `aborted`), by method, route and status. Beside
 * nodejs_eventloop_delay_seconds (how long a request may wait before the app sees it) it tells the
 * broker's share of a client's latency from the network's and the client's.
 */
export const httpDuration = metrics.histogram(
  'tessera_http_request_duration_seconds',
  'Seconds each HTTP request took in the broker, by method, route (its pattern) and status.',
  [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
);

/**
 * Where a router is mounted, kept for its routes' errors: they reach the app's error handler after the
 * router restored req.baseUrl, so a route's pattern alone would lose its prefix.
 */
export const MOUNT = 'mount';

/** The route's pattern, never the path itself (ids would make a series per grant); `unmatched` for a 404 no route took. */
export function routeLabel(req: Request, res: Response): string {
  const route = req.route as { path?: unknown } | undefined;
  if (!route || typeof route.path !== 'string') return 'unmatched';
  return `${req.baseUrl || ((res.locals[MOUNT] as string | undefined) ?? '')}${route.path}`;
}
