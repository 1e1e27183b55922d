import { sql } from 'kysely';
import type { Database } from '../db/database.js';

/** Indexes taken from the sequence per round trip; unused ones at shutdown are gaps, which the list tolerates. */
export const STATUS_INDEX_BLOCK = 64;

/**
 * Token Status List indexes, taken from the sequence in blocks so a mint does not pay a round trip
 * for its index. Values stay unique across replicas (nextval never repeats); concurrent callers share
 * one refill.
 */
export class StatusIndexAllocator {
  #free: number[] = [];
  #refill: Promise<void> | undefined;

  constructor(private readonly db: Database) {}

  async next(): Promise<number> {
    while (this.#free.length === 0) {
      this.#refill ??= this.fill().finally(() => {
        this.#refill = undefined;
      });
      await this.#refill;
    }
    return this.#free.shift()!;
  }

  private async fill(): Promise<void> {
    const { rows } = await sql<{ idx: number }>`
      select nextval('grant_status_idx_seq')::integer as idx from generate_series(1, ${STATUS_INDEX_BLOCK})`.execute(this.db);
    this.#free.push(...rows.map((r) => r.idx).sort((a, b) => a - b));
  }
}
