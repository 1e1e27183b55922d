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

/**
 * One line per variable for `--help` (npm start, npm run migrate): keyed by the schema's own names, so
 * a variable added there without a line here fails to type-check. TESSERA_ADMIN_ISSUERS is parsed on its own.
 */
const ENV_HELP: Record<keyof Env | 'TESSERA_ADMIN_ISSUERS', string> = {
  DATABASE_URL: 'Postgres as the broker\'s restricted role; unset: an embedded Postgres under TESSERA_DATA_DIR (demo mode)',
  DATABASE_OWNER_URL: 'the schema owner, for migrations (at start-up and npm run migrate); only with DATABASE_URL',
  TESSERA_KEK: '32-byte key-encryption key (base64url) sealing signing keys at rest; required with DATABASE_URL',
  TESSERA_ISSUER: 'public base URL, the tokens\' iss (default http://HOST:PORT)',
  TESSERA_CONFIG_DIR: 'configuration folder applied at start-up (demo mode: config/demo)',
  TESSERA_ADMIN_ISSUERS: 'human IdPs trusted for admin logins, a JSON array',
  TESSERA_BOOTSTRAP_ADMIN_KEY: 'an admin key (role admin) valid from the first start: tsk_ and 32+ base64url characters',
  TESSERA_DATA_DIR: 'where demo mode keeps its Postgres, KEK and admin key (default ./data)',
  TESSERA_EMBEDDED_PG_PORT: 'port of the embedded Postgres (default: a free one)',
  TESSERA_DB_POOL_MAX: 'database pool size (default 10)',
  TESSERA_SCHEDULER: 'on (default) or off: whether this replica runs the scheduled jobs',
  HOST: 'listen address (default 127.0.0.1)',
  PORT: 'listen port (default 8080)',
  LOG_LEVEL: 'fatal, error, warn, info (default), debug, trace or silent',
};

/** The environment section of a --help text. */
export function environmentHelp(): string {
  const width = Math.max(...Object.keys(ENV_HELP).map((k) => k.length));
  return `Environment:\n${Object.entries(ENV_HELP).map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n')}`;
}

/** Whether the command line asks for help (after npm's own `--`). */
export const wantsHelp = (argv: readonly string[]) => argv.some((a) => a === '--help' || a === '-h');
