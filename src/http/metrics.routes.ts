import { Router } from 'express';
import { metrics } from '../lib/metrics.js';

/** Prometheus text exposition. Counts only, no identifiers: safe to expose to the monitoring network. */
export function metricsRoutes(): Router {
  const r = Router();
  r.get('/metrics', (_req, res) => {
    res.setHeader('Cache-Control', 'no-store').type('text/plain; version=0.0.4').send(metrics.render());
  });
  return r;
}
