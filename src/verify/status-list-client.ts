import { jwtVerify, type JWTVerifyGetKey } from 'jose';
import { VerificationError } from './errors.js';
import { decodeStatusList, statusAt, statusListSize, type StatusList } from './status-list.js';

/** Where a token's status lives: the `status.status_list` claim. */
export interface StatusReference {
  idx: number;
  uri: string;
}

export interface StatusListClientOptions {
  /** The issuer's key set; Status List Tokens are signed by the same keys as access tokens. */
  keys: JWTVerifyGetKey;
  issuer: string;
  fetch: typeof fetch;
  now: () => Date;
  clockToleranceSeconds: number;
  /** Upper bound on how long a list is trusted; the token's own `ttl` may shorten it. */
  cacheSeconds: number;
}

// A slow status endpoint must not hold every request to the service hostage; after this the
// verifier fails closed with status_unavailable.
const STATUS_FETCH_TIMEOUT_MS = 5_000;

interface CachedList {
  list: StatusList;
  expiresAtMs: number;
  /** Fetched because a token's index was past the end of the list before: it gets no second refetch. */
  forRange?: boolean;
}

/**
 * Fetches, verifies and caches Status List Tokens, one fetch in flight per uri however many
 * verifications ask at once. Fails closed: no cached, unexpired list means status_unavailable.
 */
export function createStatusListClient(options: StatusListClientOptions) {
  const cache = new Map<string, CachedList>();
  const pending = new Map<string, Promise<CachedList>>();

  async function load(uri: string): Promise<CachedList> {
    const response = await options.fetch(uri, {
      headers: { accept: 'application/statuslist+jwt' },
      redirect: 'manual',
      signal: AbortSignal.timeout(STATUS_FETCH_TIMEOUT_MS),
    });
    if (response.status !== 200) throw new Error(`status list endpoint answered HTTP ${response.status}`);
    const jwt = (await response.text()).trim();
    const now = options.now();
    const { payload } = await jwtVerify(jwt, options.keys, {
      typ: 'statuslist+jwt',
      algorithms: ['ES256'],
      subject: uri,
      requiredClaims: ['iat', 'exp'],
      currentDate: now,
      clockTolerance: options.clockToleranceSeconds,
    });
    // The draft leaves `iss` optional in the list token; when present it must be our issuer.
    if (payload.iss !== undefined && payload.iss !== options.issuer) throw new Error('status list iss mismatch');
    const claims = payload as { status_list?: { bits: unknown; lst: unknown }; ttl?: unknown; exp: number };
    if (typeof claims.status_list !== 'object' || claims.status_list === null) throw new Error('no status_list claim');
    const list = decodeStatusList(claims.status_list);
    const ttl = typeof claims.ttl === 'number' && claims.ttl >= 0 ? claims.ttl : Infinity;
    const expiresAtMs = Math.min(now.getTime() + Math.min(ttl, options.cacheSeconds) * 1000, claims.exp * 1000);
    return { list, expiresAtMs };
  }

  function fresh(uri: string, forRange = false): Promise<CachedList> {
    let inFlight = pending.get(uri);
    if (!inFlight) {
      inFlight = load(uri)
        .then((entry) => {
          const kept = { ...entry, forRange };
          cache.set(uri, kept);
          return kept;
        })
        .finally(() => pending.delete(uri));
      pending.set(uri, inFlight);
    }
    return inFlight;
  }

  async function fetched(uri: string, forRange: boolean): Promise<CachedList> {
    try {
      return await fresh(uri, forRange);
    } catch (cause) {
      throw new VerificationError('status_unavailable', 'token status could not be checked', { cause });
    }
  }

  return {
    /**
     * The status value at `ref.idx`, from cache when still fresh by the injected clock. A token minted
     * after the cached list was published can have an index past its end: the list is fetched once
     * more (one fetch for every verification that needs it), and only then does the check fail closed.
     */
    async statusOf(ref: StatusReference): Promise<number> {
      let entry = cache.get(ref.uri);
      let loadedNow = false;
      if (!entry || options.now().getTime() >= entry.expiresAtMs) {
        entry = await fetched(ref.uri, false);
        loadedNow = true;
      }
      const outside = !Number.isSafeInteger(ref.idx) || ref.idx >= statusListSize(entry.list);
      if (outside && !loadedNow && !entry.forRange) entry = await fetched(ref.uri, true);
      try {
        return statusAt(entry.list, ref.idx);
      } catch (cause) {
        // The draft: an index outside the list means no statement can be made; fail closed.
        throw new VerificationError('status_unavailable', 'token status index is outside the status list', { cause });
      }
    },
  };
}

/** A client that checks token status against the issuer's Status List Tokens. */
export type StatusListClient = ReturnType<typeof createStatusListClient>;
