import { randomUUID } from 'node:crypto';
import type { NewGrant } from '../../src/grants/grant.repository.js';
import { sha256Hex } from '../../src/lib/hash.js';
import { BENCH_AUDIENCE, BENCH_TASK, CI_WORKLOAD } from './identities.js';

/** A grant row shaped like the ones the mint path writes. */
export function benchGrant(now: Date, ttlSeconds = 300): NewGrant {
  const id = randomUUID();
  return {
    id,
    workload_id: CI_WORKLOAD,
    task: BENCH_TASK,
    params: { service: 'api' },
    scopes: ['deploy:write'],
    audience: BENCH_AUDIENCE,
    purpose: null,
    issued_at: now,
    expires_at: new Date(now.getTime() + ttlSeconds * 1000),
    decision_id: null,
    approval_id: null,
    parent_id: null,
    max_uses: null,
    cnf_jkt: null,
    kid: 'bench-kid',
    status_idx: null,
    // As the bench's mints are judged: on runner_trust about their workload, fresh for its hour.
    watches_signals: true,
    watched_keys: [`runner_trust:${CI_WORKLOAD}`],
    due_at: new Date(now.getTime() + 3_600_000),
    watch_basis: null,
    watch_fresh: {
      basis: '',
      keys: { [`runner_trust:${CI_WORKLOAD}`]: { value: 'trusted', observed_at: now.toISOString(), fresh_until: new Date(now.getTime() + 3_600_000).toISOString() } },
    },
    token_sha256: sha256Hex(id),
    identity: { method: 'oidc', issuer: 'bench-ci', subject: 'repo:bench/api:ref:refs/heads/main', token_sha256: sha256Hex(`i${id}`) },
  };
}

