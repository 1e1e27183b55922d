import { CAEP_SESSION_REVOKED, type GrantEndedData } from '../grants/grant-events.js';

/**
 * The claims of an RFC 8417 Security Event Token carrying a CAEP `session-revoked` event for one ended
 * grant. The subject is an SSF complex subject: the grant as the session, the workload as the
 * application. `jti` is the event id, so a receiver that sees a retry twice can drop the duplicate.
 */
export function sessionRevokedClaims(input: {
  issuer: string;
  audience: string;
  eventId: string;
  createdAt: Date;
  data: GrantEndedData;
}): Record<string, unknown> {
  const { data } = input;
  return {
    iss: input.issuer,
    aud: input.audience,
    jti: input.eventId,
    iat: Math.floor(input.createdAt.getTime() / 1000),
    sub_id: {
      format: 'complex',
      session: { format: 'opaque', id: data.grant_id },
      application: { format: 'opaque', id: data.workload_id },
    },
    events: {
      [CAEP_SESSION_REVOKED]: {
        event_timestamp: data.event_timestamp,
        initiating_entity: data.initiating_entity,
        reason_admin: { en: `grant ${data.status}: ${data.reason ?? ''}`.trim() },
        tessera_grant: {
          status: data.status,
          task: data.task,
          ended_by: data.ended_by,
          ...(data.end_decision_id && { decision_id: data.end_decision_id }),
        },
      },
    },
  };
}
