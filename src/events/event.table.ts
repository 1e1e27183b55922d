import type { ColumnType, Generated } from 'kysely';

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface EventTables {
  security_events: {
    id: Generated<string>;
    grant_id: string;
    type: string;
    data: ColumnType<Record<string, unknown>, string, string>;
    created_at: Date;
  };
  webhook_subscriptions: {
    id: string;
    url: string;
    audience: string;
    created_by: string;
    created_at: Date;
    disabled_at: Date | null;
  };
  webhook_deliveries: {
    id: Generated<string>;
    event_id: string;
    subscription_id: string;
    status: DeliveryStatus;
    attempts: ColumnType<number, number | undefined, number>;
    next_attempt_at: Date;
    last_error: string | null;
    created_at: Date;
    delivered_at: Date | null;
    /** 0 for a revocation, 1 for other ends: claimed in that order. */
    priority: ColumnType<number, number | undefined, number>;
  };
}
