import { metrics } from '../lib/metrics.js';

/** Delivery attempts by outcome (delivered, retry, failed). */
export const webhookAttempts = metrics.counter('tessera_webhook_delivery_attempts_total', 'Webhook delivery attempts, by outcome.');

/** Deliveries given up after the last attempt: they stay in the table as failed, and are counted here. */
export const webhookFailed = metrics.counter('tessera_webhook_deliveries_failed_total', 'Webhook deliveries that could not be delivered after every attempt.');
