const DAY_SECONDS = 86_400;

/** Ended grants, with their security events and webhook deliveries (failed ones included), are kept this long. */
export const GRANT_RETENTION_SECONDS = 90 * DAY_SECONDS;
/**
 * Decisions outlive grants by two days: a grant lives at most a day (the longest TTL) after its
 * decisions are made, so when a decision goes, every grant that points at it has gone already.
 */
export const DECISION_RETENTION_SECONDS = GRANT_RETENTION_SECONDS + 2 * DAY_SECONDS;

/**
 * How long the rows whose digests the chain holds are kept: the purge job deletes them after this,
 * counted from their end (grants) or creation (decisions), so a row is never purged before its
 * chained event (written at mint or decision time) is this old.
 */
export const ROW_RETENTION_SECONDS = { grants: GRANT_RETENTION_SECONDS, decisions: DECISION_RETENTION_SECONDS } as const;

/** Replicas' clocks may differ a little: a row purged by a replica running ahead is still past retention here. */
export const RETENTION_CLOCK_MARGIN_SECONDS = 3_600;
