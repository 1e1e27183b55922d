import { metrics } from '../lib/metrics.js';

/** Delivery attempts by outcome (delivered, retry, failed). */
export const webhookAttempts = metrics.counter('tessera_webhook_delivery_attempts_total', 'Webhook delivery attempts, by outcome.');

/** Deliveries this process gave up after the last attempt: they stay in the table as failed. */
export const webhookFailed = metrics.counter('tessera_webhook_deliveries_failed_total', 'Webhook deliveries that could not be delivered after every attempt.');

/**
 * Deliveries kept as failed, across every replica and restart: read from the database on each scrape,
 * because a per-process counter forgets them when its process ends and says nothing of other replicas.
 */
export const webhookUndeliverable = metrics.gauge('tessera_webhook_deliveries_undeliverable', 'Webhook deliveries kept as failed after every attempt (all replicas, from the database).');

/** Deliveries waiting to be sent or retried (all replicas, from the database): the backlog. */
export const webhookPending = metrics.gauge('tessera_webhook_deliveries_pending', 'Webhook deliveries waiting to be sent or retried (all replicas, from the database).');
