import { Router } from 'express';
import type { Deps } from '../deps.js';
import { metrics } from '../lib/metrics.js';
import { countDeliveries } from '../events/webhook.repository.js';
import { webhookPending, webhookUndeliverable } from '../events/webhook.metrics.js';

/** Prometheus text exposition. Counts only, no identifiers: safe to expose to the monitoring network. */
export function metricsRoutes(deps: Pick<Deps, 'db' | 'log'>): Router {
  const r = Router();
  r.get('/metrics', async (_req, res) => {
    // Gauges of shared state come from Postgres; without it they are left out rather than stale.
    const counts = await countDeliveries(deps.db).catch((err: Error) => {
      deps.log.warn({ err: err.message }, 'metrics: webhook delivery counts unavailable');
      return undefined;
    });
    webhookUndeliverable.set(counts?.failed);
    webhookPending.set(counts?.pending);
    res.setHeader('Cache-Control', 'no-store').type('text/plain; version=0.0.4').send(metrics.render());
  });
  return r;
}
