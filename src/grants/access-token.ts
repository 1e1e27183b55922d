import { epochSeconds } from '../lib/clock.js';

/** The RFC 9396 authorization_details type that carries a task and its parameters. */
export const TASK_DETAILS_TYPE = 'tessera_task';

export interface AccessTokenInput {
  issuer: string;
  grantId: string;
  workloadId: string;
  audience: string;
  scopes: string[];
  task: string;
  params: Record<string, unknown>;
  issuedAt: Date;
  expiresAt: Date;
  decisionId?: string | undefined;
  cnfJkt?: string | undefined;
  act?: Record<string, unknown> | undefined;
  status?: { idx: number; uri: string } | undefined;
}

/** The claims of an RFC 9068 access token for one grant (DESIGN.md, "Token"). */
export function accessTokenClaims(t: AccessTokenInput): Record<string, unknown> {
  const iat = epochSeconds(t.issuedAt);
  return {
    iss: t.issuer,
    sub: t.workloadId,
    aud: t.audience,
    iat,
    nbf: iat,
    exp: epochSeconds(t.expiresAt),
    jti: t.grantId,
    client_id: t.workloadId,
    scope: t.scopes.join(' '),
    task: t.task,
    authorization_details: [{ type: TASK_DETAILS_TYPE, task: t.task, params: t.params }],
    ...(t.decisionId && { decision_id: t.decisionId }),
    ...(t.cnfJkt && { cnf: { jkt: t.cnfJkt } }),
    ...(t.act && { act: t.act }),
    ...(t.status && { status: { status_list: t.status } }),
  };
}
