/** Postgres aborted the transaction to break a deadlock (SQLSTATE 40P01): running it again is safe. */
const DEADLOCK_DETECTED = '40P01';
/** Attempts of a transaction that lost a deadlock; a third loss in a row is a bug worth an error. */
const DEADLOCK_ATTEMPTS = 3;
/** The loser waits a little (random, so two losers do not collide again in lockstep). */
const DEADLOCK_BACKOFF_MS = 25;

/** Runs `fn` (one whole transaction) again when Postgres picked it as a deadlock victim. */
export async function retryOnDeadlock<T>(fn: () => Promise<T>, attempts = DEADLOCK_ATTEMPTS): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if ((err as { code?: string }).code !== DEADLOCK_DETECTED || attempt >= attempts) throw err;
      await new Promise((r) => setTimeout(r, DEADLOCK_BACKOFF_MS * attempt * (1 + Math.random())));
    }
  }
}
