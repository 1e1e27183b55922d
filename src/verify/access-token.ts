import type { JWTPayload } from 'jose';
import { VerificationError } from './errors.js';

/** One RFC 9396 authorization detail as the broker writes it: the task and its parameters. */
export interface TesseraTaskDetail {
  type: 'tessera_task';
  task: string;
  params: Record<string, unknown>;
}

/** RFC 8693 actor claim: who acts on behalf of `sub`, nested for each delegation step. */
export interface ActorClaim {
  sub: string;
  act?: ActorClaim;
  [claim: string]: unknown;
}

/** The claims of a verified tessera access token (RFC 9068 profile). */
export interface TesseraAccessToken extends JWTPayload {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  nbf?: number;
  jti: string;
  client_id: string;
  scope: string;
  task: string;
  authorization_details: Array<TesseraTaskDetail | { type: string; [field: string]: unknown }>;
  decision_id?: string;
  act?: ActorClaim;
  cnf?: { jkt: string };
  status?: { status_list: { idx: number; uri: string } };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isActor(value: unknown): value is ActorClaim {
  return isObject(value) && typeof value.sub === 'string' && (value.act === undefined || isActor(value.act));
}

function isDetail(value: unknown): boolean {
  if (!isObject(value) || typeof value.type !== 'string') return false;
  return value.type !== 'tessera_task' || (typeof value.task === 'string' && isObject(value.params));
}

function isStatus(value: unknown): boolean {
  if (!isObject(value) || !isObject(value.status_list)) return false;
  const { idx, uri } = value.status_list;
  return Number.isSafeInteger(idx) && (idx as number) >= 0 && typeof uri === 'string' && URL.canParse(uri);
}

/**
 * Checks the shape of claims jose has already verified (signature, iss, aud, exp, presence),
 * so that services can rely on the types instead of re-checking each field.
 */
export function toAccessToken(payload: JWTPayload): TesseraAccessToken {
  const p = payload as Record<string, unknown>;
  const problems: string[] = [];
  for (const claim of ['sub', 'jti', 'client_id', 'scope', 'task']) {
    if (typeof p[claim] !== 'string') problems.push(claim);
  }
  if (!Array.isArray(p.authorization_details) || !p.authorization_details.every(isDetail)) {
    problems.push('authorization_details');
  } else if (
    !p.authorization_details.some((d) => d.type === 'tessera_task' && d.task === p.task)
  ) {
    problems.push('authorization_details (no tessera_task entry for the task)');
  }
  if (p.decision_id !== undefined && typeof p.decision_id !== 'string') problems.push('decision_id');
  if (p.act !== undefined && !isActor(p.act)) problems.push('act');
  if (p.cnf !== undefined && !(isObject(p.cnf) && typeof p.cnf.jkt === 'string')) problems.push('cnf');
  if (p.status !== undefined && !isStatus(p.status)) problems.push('status');
  if (problems.length > 0) {
    throw new VerificationError('invalid_token', `malformed claims: ${problems.join(', ')}`);
  }
  return payload as TesseraAccessToken;
}
