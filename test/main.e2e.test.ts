import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import http from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { importJWK, SignJWT, type JWK } from 'jose';
import { freePort } from '../src/db/embedded.js';
import { envSchema } from '../src/config/env.js';
import { createTestDatabase } from './support/database.js';
import { runTessera } from './support/cli.js';

/** What a stack trace looks like in output: a line starting with "at". */
const STACK_LINE = /^\s+at /m;
const KEK = Buffer.alloc(32, 7).toString('base64url');

interface BrokerProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves once `stream`'s output so far matches `pattern` (or rejects if the process exits first). */
  waitFor(stream: 'stdout' | 'stderr', pattern: RegExp): Promise<void>;
  exited: Promise<number | null>;
}

/** Starts `src/main.ts` as `npm start` does (or another entry, as its npm script does), with only `env` (and PATH, HOME) in its environment. */
function startMain(env: Record<string, string>, args: string[] = [], entry = 'src/main.ts'): BrokerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { stdout: '', stderr: '' };
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  child.stdout!.on('data', (b: Buffer) => (out.stdout += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out.stderr += b.toString()));
  return {
    child,
    stdout: () => out.stdout,
    stderr: () => out.stderr,
    exited,
    waitFor: (stream, pattern) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (!pattern.test(out[stream])) return false;
          child[stream]!.off('data', check);
          resolve();
          return true;
        };
        if (check()) return;
        child[stream]!.on('data', check);
        void exited.then((code) => reject(new Error(`broker exited (${code}) before ${pattern}:\n${out.stderr}\n${out.stdout.slice(-2000)}`)));
      }),
  };
}

const running: BrokerProcess[] = [];
const dirs: string[] = [];
afterAll(async () => {
  // Only reached with a broker still up when a test failed midway: stop it the graceful way.
  for (const p of running.filter((r) => r.child.exitCode === null)) {
    p.child.kill('SIGTERM');
    await p.exited;
  }
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'tessera-main-'));
  dirs.push(d);
  return d;
}

describe('broker start-up refuses a bad environment or configuration, naming it, without a stack trace', () => {
  it.each([
    [{ PORT: 'eighty' }, 2, /PORT: .*number/],
    [{ DATABASE_URL: 'postgres://tessera@127.0.0.1:1/tessera' }, 2, /TESSERA_KEK: required with DATABASE_URL/],
    [{ TESSERA_ISSUER: 'ftp://tessera.example' }, 2, /TESSERA_ISSUER: must be an http\(s\) URL/],
  ])('%o exits %i', async (env, code, message) => {
    const p = startMain(env);
    expect(await p.exited).toBe(code);
    expect(p.stderr()).toMatch(message);
    expect(p.stderr()).not.toMatch(STACK_LINE);
  });

  it('prints only the message of a configuration error', async () => {
    const database = await createTestDatabase();
    const config = await tempDir();
    await writeFile(path.join(config, 'tasks.yaml'), 'tasks:\n  - name: x\n    scopes: [a]\n    audience: b\n    workloads: [w]\n    ttl: 5\n');
    try {
      const p = startMain({ DATABASE_URL: database.url, TESSERA_KEK: KEK, TESSERA_CONFIG_DIR: config, PORT: '0', LOG_LEVEL: 'warn' });
      expect(await p.exited).toBe(1);
      expect(p.stderr()).toMatch(/configuration is invalid:\n\s+- tasks\.0: Unrecognized key: "ttl"/);
      expect(p.stderr()).not.toMatch(STACK_LINE);
    } finally {
      await database.drop();
    }
  });
});

describe('--help of npm start and npm run migrate', () => {
  it.each([['src/main.ts'], ['src/db/migrate.cli.ts']])('%s --help names every environment variable and starts nothing', async (entry) => {
    const dataDir = path.join(await tempDir(), 'data');
    const p = startMain({ TESSERA_DATA_DIR: dataDir }, ['--help'], entry);
    expect(await p.exited).toBe(0);
    expect(p.stdout()).toMatch(/^Usage: npm (start|run migrate)/);
    for (const name of [...Object.keys(envSchema.shape), 'TESSERA_ADMIN_ISSUERS']) expect(p.stdout()).toContain(`  ${name}  `);
    // No embedded Postgres, no generated key: help reads nothing and writes nothing.
    expect(existsSync(dataDir)).toBe(false);
  });
});

describe('npm start on a fresh machine (embedded Postgres, demo configuration)', () => {
  it('prints a banner whose commands get and verify a first token; finishes in-flight requests on SIGTERM and exits 0', { timeout: 180_000 }, async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    // The data dir itself (mkdtemp) is what embedded Postgres makes reachable for its system user.
    const dataDir = await tempDir();
    const p = startMain({ TESSERA_DATA_DIR: dataDir, PORT: String(port), TESSERA_ISSUER: `${url}/`, LOG_LEVEL: 'info' });
    running.push(p);
    await p.waitFor('stderr', /Admin key .*\n/);

    // The trailing slash of TESSERA_ISSUER does not leak into endpoint URLs.
    const meta = (await (await fetch(`${url}/.well-known/oauth-authorization-server`)).json()) as Record<string, string>;
    expect(meta).toMatchObject({ issuer: url, token_endpoint: `${url}/oauth2/token`, jwks_uri: `${url}/.well-known/jwks.json` });

    const banner = p.stderr().replace(/\\\n\s*/g, '');
    // The bootstrap admin key generated by this first start is shown once, and works on the admin API.
    const adminKey = /generated now and shown only this once: (tsk_\S+)/.exec(banner)?.[1];
    expect(adminKey, banner).toBeDefined();
    const admin = await fetch(`${url}/v1/admin/grants`, { headers: { authorization: `Bearer ${adminKey}` } });
    expect(admin.status).toBe(200);
    const command = (name: string) => banner.match(new RegExp(`npx tessera ${name} (.+)`))![1]!.trim().split(/\s+/);
    const got = await runTessera(['token', ...command('token')]);
    expect(got.stderr).toBe('');
    const token = (JSON.parse(got.stdout) as { access_token: string }).access_token;
    const verified = await runTessera(['verify', ...command('verify').map((a) => (a === '<token>' ? token : a))]);
    expect(verified.stderr).toBe('');
    expect(JSON.parse(verified.stdout)).toMatchObject({ iss: url, sub: 'demo-agent', task: 'hello-world', aud: 'https://hello.example' });

    // A request whose headers have arrived (100 Continue answered) is in flight when SIGTERM comes.
    const body = JSON.stringify({ task: 'hello-world', purpose: 'in flight during shutdown' });
    const req = http.request(`${url}/v1/grants`, {
      method: 'POST',
      agent: false,
      headers: {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        authorization: `Bearer ${await demoAgentAssertion(url)}`,
        expect: '100-continue',
      },
    });
    const response = once(req, 'response').then(async ([res]) => {
      let text = '';
      for await (const chunk of res as http.IncomingMessage) text += String(chunk);
      return { status: (res as http.IncomingMessage).statusCode, body: JSON.parse(text) as Record<string, unknown> };
    });
    req.flushHeaders();
    await once(req, 'continue');
    p.child.kill('SIGTERM');
    await p.waitFor('stdout', /"msg":"shutting down"/);
    req.end(body);

    const answered = await response;
    expect(answered.status).toBe(201);
    expect(answered.body.task).toBe('hello-world');
    expect(await p.exited).toBe(0);
    expect(p.stderr()).not.toMatch(STACK_LINE);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();

    // A second start on the same data keeps the key and no longer shows it.
    const again = startMain({ TESSERA_DATA_DIR: dataDir, PORT: String(port), TESSERA_ISSUER: `${url}/`, LOG_LEVEL: 'info' });
    running.push(again);
    await again.waitFor('stderr', /Admin key .*\n/);
    expect(again.stderr()).toContain(`Admin key (role admin): stored in ${dataDir}/admin-key`);
    expect(again.stderr()).not.toContain(adminKey!);
    expect((await fetch(`${url}/v1/admin/grants`, { headers: { authorization: `Bearer ${adminKey}` } })).status).toBe(200);
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  });
});

/** An RFC 7523 assertion signed with the demo agent's committed key, as `tessera token` makes one. */
async function demoAgentAssertion(audience: string): Promise<string> {
  const jwk = JSON.parse(await readFile('config/demo/keys/demo-agent.private.jwk.json', 'utf8')) as JWK;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ jti: crypto.randomUUID() })
    .setProtectedHeader({ alg: 'ES256', kid: jwk.kid! })
    .setIssuer('demo-agent')
    .setSubject('demo-agent')
    .setAudience(audience)
    .setIssuedAt(now)
    .setExpirationTime(now + 60)
    .sign(await importJWK(jwk, 'ES256'));
}
