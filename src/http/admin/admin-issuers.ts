import { decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { z } from 'zod';
import type { Clock } from '../../lib/clock.js';
import { TesseraError } from '../../lib/errors.js';
import { RemoteJwks } from '../../identity/remote-jwks.js';
import type { RegistrySnapshot } from '../../config/registry.js';
import { IDENTITY_ALGORITHMS } from '../../config/spec.js';
import { roleAtLeast, roleSchema, type AdminPrincipal } from './admin-keys.js';
import type { AdminRole } from './admin.table.js';

/** The environment variable that trusts human IdPs for the admin plane (a JSON array of issuers). */
export const ADMIN_ISSUERS_VARIABLE = 'TESSERA_ADMIN_ISSUERS';
/** A JWKS fetch that hangs must not hold an admin request: give up after this long. */
const JWKS_FETCH_TIMEOUT_MS = 5_000;

/**
 * One trusted human IdP: whose `iss`, which `aud` (an audience of its own for the admin plane, never
 * a workload audience), and which values of `roles_claim` (a string or a list, e.g. groups) give which
 * role; several matching values give the highest. `person_claim` names the person (default `email`,
 * else `sub`): what self-approval rules compare and what audit events name.
 */
export const adminIssuerSpec = z.strictObject({
  issuer: z.url(),
  jwks_uri: z.url(),
  audience: z.string().min(1),
  roles_claim: z.string().min(1).default('groups'),
  roles: z.record(z.string().min(1), roleSchema).refine((m) => Object.keys(m).length > 0, 'map at least one claim value to a role'),
  person_claim: z.string().min(1).default('email'),
  algorithms: z.array(z.enum(IDENTITY_ALGORITHMS)).min(1).default(['RS256', 'ES256']),
  /** IdP clocks drift like CI issuers' do. */
  leeway_seconds: z.number().int().min(0).max(600).default(60),
  /** A person's ID token is good for a working session; an older one is refused even if unexpired. */
  max_token_age_seconds: z.number().int().min(60).max(86_400).default(3600),
  jwks_cooldown_seconds: z.number().int().min(1).max(3600).default(30),
  jwks_max_age_seconds: z.number().int().min(60).max(86_400).default(600),
});
export type AdminIssuerSpec = z.infer<typeof adminIssuerSpec>;

const adminIssuersSpec = z.array(adminIssuerSpec).max(20).superRefine((list, ctx) => {
  list.forEach((a, i) => {
    if (list.findIndex((b) => b.issuer === a.issuer) !== i) ctx.addIssue({ code: 'custom', path: [i, 'issuer'], message: 'trusted twice' });
  });
});

/** Parses TESSERA_ADMIN_ISSUERS (absent or empty: none), or throws a message naming each bad field and the fix. */
export function parseAdminIssuers(raw: string | undefined): AdminIssuerSpec[] {
  if (!raw?.trim()) return [];
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new Error(`invalid environment:\n  ${ADMIN_ISSUERS_VARIABLE}: must be a JSON array, e.g. [{"issuer":"https://login.example.com","jwks_uri":"https://login.example.com/jwks","audience":"tessera-admin","roles":{"tessera-admins":"admin"}}]`);
  }
  const result = adminIssuersSpec.safeParse(json);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${ADMIN_ISSUERS_VARIABLE}[${i.path.join('.')}]: ${i.message}`);
    throw new Error(`invalid environment:\n${lines.join('\n')}`);
  }
  return result.data;
}

/** A 401 like every other admin authentication failure; which check failed goes to the log only. */
const refused = (logDetail: string, cause?: unknown) => new TesseraError(401, 'invalid_token', 'Admin authentication failed.', { logDetail, cause });

const claimValues = (v: unknown): string[] => (typeof v === 'string' ? [v] : Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** The highest role the token's claim values map to, or undefined. */
function roleOf(spec: AdminIssuerSpec, payload: JWTPayload): AdminRole | undefined {
  const roles = claimValues(payload[spec.roles_claim]).flatMap((v) => (spec.roles[v] ? [spec.roles[v]] : []));
  return roles.reduce<AdminRole | undefined>((best, r) => (best && roleAtLeast(best, r) ? best : r), undefined);
}

/**
 * Verifies admin JWTs from trusted human IdPs, one JWKS cache per issuer (the workload issuers' cache
 * class). Refused: any other issuer (workload CI issuers included), the broker's own tokens, a token
 * whose audience is also a workload audience of the same issuer, and a token no role maps to.
 */
export class AdminIssuers {
  readonly #issuers = new Map<string, { spec: AdminIssuerSpec; jwks: RemoteJwks }>();

  constructor(
    specs: AdminIssuerSpec[],
    private readonly clock: Clock,
  ) {
    for (const spec of specs) {
      const jwks = new RemoteJwks({
        url: spec.jwks_uri,
        clock,
        cooldownMs: spec.jwks_cooldown_seconds * 1000,
        maxAgeMs: spec.jwks_max_age_seconds * 1000,
        timeoutMs: JWKS_FETCH_TIMEOUT_MS,
      });
      this.#issuers.set(spec.issuer, { spec, jwks });
    }
  }

  /** The admin this JWT proves, or a 401. `context` says what the token must not be. */
  async authenticate(token: string, context: { brokerIssuer: string; registry: RegistrySnapshot }): Promise<AdminPrincipal> {
    let iss: unknown;
    let typ: unknown;
    try {
      iss = decodeJwt(token).iss;
      typ = decodeProtectedHeader(token).typ;
    } catch (err) {
      throw refused('admin credential is neither an admin key nor a JWT', err);
    }
    if (typ === 'at+jwt' || iss === context.brokerIssuer) throw refused('a broker-issued token was presented as an admin credential');
    const trusted = typeof iss === 'string' ? this.#issuers.get(iss) : undefined;
    if (!trusted) throw refused(`no trusted admin issuer for iss=${String(iss).slice(0, 200)}`);
    const { spec, jwks } = trusted;
    let payload: JWTPayload;
    try {
      // jose with a JWKS resolver and an algorithm list never honours jku/x5u/jwk headers, none or HS*.
      ({ payload } = await jwtVerify(token, jwks.getKey, {
        issuer: spec.issuer,
        audience: spec.audience,
        algorithms: spec.algorithms,
        clockTolerance: spec.leeway_seconds,
        maxTokenAge: spec.max_token_age_seconds + spec.leeway_seconds,
        currentDate: this.clock.now(),
        requiredClaims: ['sub', 'exp', 'iat'],
      }));
    } catch (err) {
      throw refused(`admin issuer ${spec.issuer}: ${(err as Error & { code?: string }).code ?? 'error'}: ${(err as Error).message}`, err);
    }
    // An IdP that is also a workload issuer: its workload tokens never double as admin logins.
    const workloadIssuer = context.registry.issuerByIss.get(spec.issuer);
    if (workloadIssuer && claimValues(payload.aud).some((a) => workloadIssuer.audiences.includes(a))) {
      throw refused(`admin issuer ${spec.issuer}: the token's audience is a workload audience of issuer ${workloadIssuer.id}`);
    }
    const granted = roleOf(spec, payload);
    if (!granted) throw refused(`admin issuer ${spec.issuer}: no role for ${spec.roles_claim}=${JSON.stringify(payload[spec.roles_claim] ?? null).slice(0, 200)}`);
    const person = claimValues(payload[spec.person_claim])[0] ?? String(payload.sub);
    return { id: `idp:${spec.issuer}#${String(payload.sub)}`, name: `idp:${person}`, role: granted, person };
  }
}
