import { z } from 'zod';

const port = z.coerce.number().int().min(0).max(65_535);

/** The broker's environment, validated once at start-up; a bad value stops the broker with its name. */
export const envSchema = z.object({
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: port.default(8080),
  /** Postgres to use; without it the broker starts an embedded Postgres under TESSERA_DATA_DIR. */
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional(),
  /** The schema owner, for migrations (`npm run migrate`, or at start-up); DATABASE_URL is then the broker's restricted role. */
  DATABASE_OWNER_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional(),
  TESSERA_DATA_DIR: z.string().min(1).default('./data'),
  /**
   * The public base URL of this broker: the `iss` of its tokens. Defaults to http://HOST:PORT. Endpoint
   * URLs are built by appending paths, so a trailing slash is dropped (it would give `//oauth2/token`).
   */
  TESSERA_ISSUER: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL, e.g. https://tessera.example.com' })
    .transform((v) => v.replace(/\/+$/, ''))
    .optional(),
  /** 32-byte key-encryption key (base64url) for signing keys at rest. Generated into the data dir in demo mode. */
  TESSERA_KEK: z
    .string()
    .refine((v) => Buffer.from(v, 'base64url').length === 32, 'must be 32 bytes, base64url-encoded (openssl rand -base64 32)')
    .optional(),
  /** Folder of configuration-as-code applied at start-up (defaults to the demo folder in embedded mode). */
  TESSERA_CONFIG_DIR: z.string().min(1).optional(),
  /** An admin API key accepted from first start (role admin); generated and printed once in demo mode. */
  TESSERA_BOOTSTRAP_ADMIN_KEY: z.string().regex(/^tsk_[A-Za-z0-9_-]{32,}$/, 'must be "tsk_" and at least 32 random base64url characters (make one: echo "tsk_$(openssl rand -base64 32 | tr "+/" "-_" | tr -d =)")').optional(),
  TESSERA_DB_POOL_MAX: z.coerce.number().int().min(1).max(200).default(10),
  TESSERA_EMBEDDED_PG_PORT: port.optional(),
  /** Whether this replica runs the scheduled jobs (every replica may; API-only replicas can opt out). */
  TESSERA_SCHEDULER: z.enum(['on', 'off']).default('on'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
export type Env = z.infer<typeof envSchema>;

/** Parses the environment or throws an error whose message names each bad variable and the fix. */
export function parseEnv(source: NodeJS.ProcessEnv): Readonly<Env> {
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== ''));
  const result = envSchema.safeParse(cleaned);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid environment:\n${lines.join('\n')}`);
  }
  if (result.data.DATABASE_URL && !result.data.TESSERA_KEK) {
    throw new Error('invalid environment:\n  TESSERA_KEK: required with DATABASE_URL (generate one: openssl rand -base64 32 | tr "+/" "-_")');
  }
  if (result.data.DATABASE_OWNER_URL && !result.data.DATABASE_URL) {
    throw new Error('invalid environment:\n  DATABASE_OWNER_URL: only with DATABASE_URL (the broker\'s restricted role); the embedded Postgres sets up both itself');
  }
  return Object.freeze(result.data);
}
