import type { Logger } from 'pino';
import type { Database } from './db/database.js';
import type { Registry } from './config/registry.js';
import type { KeyStore } from './keys/keystore.js';
import type { Clock } from './lib/clock.js';
import type { Decider } from './decisions/decider.js';
import type { RequestCounter } from './decisions/request-counter.js';
import type { StatusIndexAllocator } from './grants/status-index.js';
import type { MintWriter } from './grants/mint.repository.js';
import type { NewSignal } from './signals/signal.repository.js';
import type { AuditSealer } from './audit/sealer.js';
import type { IssuerKeys } from './identity/issuer-keys.js';
import type { AuthenticationContext } from './identity/authenticate.js';
import type { Kek } from './keys/kek.js';
import type { AdminIssuers } from './http/admin/admin-issuers.js';

/** Everything the HTTP app and the scheduler need, built once by main (or a test) and passed down. */
export interface Deps {
  db: Database;
  clock: Clock;
  log: Logger;
  registry: Registry;
  keys: KeyStore;
  /** Seals secrets the broker must use itself (approval webhook HMAC secrets). */
  kek: Kek;
  issuerKeys: IssuerKeys;
  decide: Decider;
  /** Requests per workload per minute, counted in memory and flushed every second. */
  requests: RequestCounter;
  /** Token Status List indexes, taken from the sequence in blocks. */
  statusIndexes: StatusIndexAllocator;
  /** Writes mints, several per statement when they commit together (a group commit). */
  mints: MintWriter;
  /** The broker's public base URL: `iss` of its tokens, base of its endpoints. */
  issuer: string;
  /** Chains staged audit events; `flush()` before reading the trail. */
  audit: AuditSealer;
  /** Trusted human IdPs whose JWTs authenticate admins beside admin keys (none unless configured). */
  adminIssuers: AdminIssuers;
  /** Called after a signal batch is stored and answered, off the request (continuous re-evaluation hooks in here; see signals/follow-up.ts). */
  onSignals?: (signals: NewSignal[]) => Promise<void>;
}

/** The context workload authentication runs in, taken from the current registry snapshot. */
export function authContext(deps: Deps): AuthenticationContext {
  return {
    db: deps.db,
    clock: deps.clock,
    registry: deps.registry.snapshot,
    issuerKeys: deps.issuerKeys,
    brokerIssuer: deps.issuer,
    assertionAudiences: [deps.issuer, `${deps.issuer}/oauth2/token`],
  };
}
