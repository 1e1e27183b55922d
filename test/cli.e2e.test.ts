import { mkdir, mkdtemp, writeFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { decodeJwt } from 'jose';
import { startTestBroker, post, TEST_ADMIN_KEY, type TestBroker } from './support/broker.js';
import { startFakeIssuer, type FakeIssuer } from './support/fake-issuer.js';
import { agentKey, testConfig, type AgentKey } from './support/fixtures.js';
import { runTessera as tessera } from './support/cli.js';

let broker: TestBroker;
let ci: FakeIssuer;
let agent: AgentKey;
let dir: string;

beforeAll(async () => {
  ci = await startFakeIssuer({ now: () => broker.clock.now() });
  agent = await agentKey();
  const config = testConfig(ci, agent.jwk);
  config.tasks.push({
    name: 'lookup-order',
    scopes: ['orders:read'],
    audience: 'https://orders.example',
    workloads: ['agent-*'],
    params: {
      order_id: { type: 'string' },
      ref: { type: 'string', required: false },
      qty: { type: 'number', integer: true, required: false },
      amount: { type: 'number', required: false },
      express: { type: 'boolean', required: false },
    },
  } as never);
  broker = await startTestBroker(config);
  dir = await mkdtemp(path.join(os.tmpdir(), 'tessera-cli-'));
  await writeFile(path.join(dir, 'agent.jwk.json'), JSON.stringify(agent.privateJwk));
});
afterAll(async () => {
  await broker.stop();
  await ci.close();
  await rm(dir, { recursive: true, force: true });
});

describe('tessera CLI', () => {
  it('prints --help for every command', async () => {
    for (const cmd of ['token', 'verify', 'apply']) {
      const r = await tessera([cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: tessera ${cmd}`));
    }
    const top = await tessera(['--help']);
    expect(top.stdout).toMatch(/Commands:\n {2}token/);
    expect((await tessera(['nope'])).code).toBe(2);
  });

  it('token: gets a token with an RFC 7523 assertion; verify: checks it through JWKS', async () => {
    const got = await tessera(['token', '--broker', broker.url, '--task', 'refund-payment', '--param', 'amount=12.5', '--client-id', 'agent-1', '--assertion-key', path.join(dir, 'agent.jwk.json')]);
    expect(got.stderr).toBe('');
    expect(got.code).toBe(0);
    const token = got.stdout.trim();
    expect(token.split('.')).toHaveLength(3);

    const ok = await tessera(['verify', '--broker', broker.url, '--audience', 'https://payments.example', '--task', 'refund-payment', token]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ sub: 'agent-1', task: 'refund-payment', authorization_details: [{ params: { amount: 12.5 } }] });

    const wrongAud = await tessera(['verify', '--broker', broker.url, '--audience', 'https://deploy.example', '-'], {}, token);
    expect(wrongAud.code).toBe(1);
    expect(wrongAud.stderr).toMatch(/invalid: invalid_token/);
  });

  it('token: reads the identity token from an environment variable and explains refusals', async () => {
    const env = { TESSERA_IDENTITY_TOKEN: await ci.token(), TESSERA_URL: broker.url };
    const json = await tessera(['token', '--task', 'deploy-prod', '--param', 'service=api', '--json'], env);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ task: 'deploy-prod', token_type: 'Bearer', expires_in: 300 });
    const bad = await tessera(['token', '--task', 'deploy-prod', '--param', 'service=db'], { ...env, TESSERA_IDENTITY_TOKEN: await ci.token() });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/400 .*\n {2}params\.service: must be one of: api, worker/);
    const none = await tessera(['token', '--task', 'deploy-prod'], { TESSERA_URL: broker.url });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no identity token/);
  });

  it('token --param: typed only when unambiguous, exact JSON with :=, bad forms refused before any request', async () => {
    const asAgent = ['token', '--broker', broker.url, '--task', 'lookup-order', '--client-id', 'agent-1', '--assertion-key', path.join(dir, 'agent.jwk.json')];
    const params = async (...kv: string[]) => {
      // The CLI signs its assertion on the wall clock; the broker's test clock stands still meanwhile.
      broker.clock.set(Date.now());
      const r = await tessera([...asAgent, ...kv.flatMap((p) => ['--param', p])]);
      expect(r.stderr).toBe('');
      return (decodeJwt(r.stdout.trim()).authorization_details as Array<{ params: unknown }>)[0]!.params;
    };
    expect(await params('order_id=0042', 'ref=12345678901234567890', 'qty=3', 'amount=12.5', 'express=true')).toEqual({
      order_id: '0042',
      ref: '12345678901234567890',
      qty: 3,
      amount: 12.5,
      express: true,
    });
    expect(await params('order_id:="12345"', 'ref=1e3', 'qty:=7', 'express:=false')).toEqual({ order_id: '12345', ref: '1e3', qty: 7, express: false });

    // A plain number is a number, as --help says; the broker names the field when the task wants a string.
    broker.clock.set(Date.now());
    const digits = await tessera([...asAgent, '--param', 'order_id=12345']);
    expect(digits.code).toBe(1);
    expect(digits.stderr).toMatch(/400 [\s\S]*params\.order_id: .*expected string/);

    for (const [args, message] of [
      [['--param', 'order_id:={bad'], /--param order_id:= expects a JSON value/],
      [['--param', '=x'], /--param expects key=value or key:=<json>/],
      [['--params', '[1]'], /--params must be a JSON object/],
    ] as const) {
      const r = await tessera([...asAgent, ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/SyntaxError|\n\s+at /);
    }
    const help = (await tessera(['token', '--help'])).stdout;
    expect(help).toContain(`--param <key:=json>`);
    expect(help).not.toContain('payment_id');
  });

  it('token: reads --identity-token-file, and a named source that is missing is an error, not a fall-through', async () => {
    const file = path.join(dir, 'identity.jwt');
    await writeFile(file, `${await ci.token()}\n`);
    const fromFile = await tessera(['token', '--broker', broker.url, '--task', 'deploy-prod', '--param', 'service=api', '--identity-token-file', file]);
    expect(fromFile.code).toBe(0);
    expect(decodeJwt(fromFile.stdout.trim()).sub).toBe('api-deploy');

    const missing = await tessera(['token', '--broker', broker.url, '--task', 'deploy-prod', '--identity-token-file', path.join(dir, 'nope.jwt')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nope\.jwt/);
    expect(missing.stderr).not.toMatch(/\n\s+at /);

    // TESSERA_IDENTITY_TOKEN holds a valid token, but the job asked for CI_JWT: it must not be used instead.
    const env = { TESSERA_IDENTITY_TOKEN: await ci.token() };
    const unset = await tessera(['token', '--broker', broker.url, '--task', 'deploy-prod', '--param', 'service=api', '--identity-token-env', 'CI_JWT'], env);
    expect(unset.code).toBe(2);
    expect(unset.stderr).toMatch(/--identity-token-env: CI_JWT is not set or empty/);
    const named = await tessera(['token', '--broker', broker.url, '--task', 'deploy-prod', '--param', 'service=api', '--identity-token-env', 'CI_JWT'], { CI_JWT: await ci.token() });
    expect(named.code).toBe(0);
  });

  it('token: uses GitHub Actions OIDC request variables', async () => {
    const http = await import('node:http');
    let asked = '';
    const gh = http.createServer(async (req, res) => {
      asked = `${req.url} ${req.headers.authorization}`;
      res.end(JSON.stringify({ value: await ci.token() }));
    });
    await new Promise<void>((r) => gh.listen(0, '127.0.0.1', r));
    const port = (gh.address() as { port: number }).port;
    try {
      const r = await tessera(['token', '--broker', broker.url, '--task', 'deploy-prod', '--param', 'service=worker'], {
        ACTIONS_ID_TOKEN_REQUEST_URL: `http://127.0.0.1:${port}/token?api-version=2.0`,
        ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'gh-request-token',
      });
      expect(r.code).toBe(0);
      expect(asked).toBe('/token?api-version=2.0&audience=tessera Bearer gh-request-token');
    } finally {
      gh.close();
    }
  });

  // Seven CLI processes, each starting through tsx: seconds apiece on a machine busy with other test runs.
  it('apply: validates a folder, applies it once, and names bad fields', { timeout: 90_000 }, async () => {
    const cfgDir = path.join(dir, 'config');
    await import('node:fs/promises').then((fs) => fs.mkdir(cfgDir));
    const config = testConfig(ci, agent.jwk);
    config.tasks.push({ name: 'read-logs', scopes: ['logs:read'], audience: 'https://logs.example', workloads: ['agent-1'], params: {} } as never);
    await writeFile(path.join(cfgDir, 'all.yaml'), stringify(config));
    const env = { TESSERA_ADMIN_KEY: TEST_ADMIN_KEY, TESSERA_URL: broker.url };
    const dry = await tessera(['apply', cfgDir, '--dry-run'], env);
    expect(dry.stdout).toMatch(/^valid: 1 issuer\(s\), 3 workload\(s\), 3 task\(s\)/);
    const first = await tessera(['apply', cfgDir], env);
    expect(first.stdout).toMatch(/^applied as version \d+/);
    expect(broker.deps.registry.snapshot.tasks.has('read-logs')).toBe(true);
    expect((await tessera(['apply', cfgDir], env)).stdout).toMatch(/^unchanged/);

    // A stricter policy version: show what re-evaluation would revoke, then revoke it.
    const live = await post(`${broker.url}/v1/grants`, { task: 'deploy-prod', params: { service: 'api' } }, { authorization: `Bearer ${await ci.token()}` });
    expect(live.status).toBe(201);
    await writeFile(path.join(cfgDir, 'freeze.cedar'), '@id("freeze") @reason("deploy freeze") forbid (principal, action == Action::"deploy-prod", resource);\n@id("rest") permit (principal, action, resource);\n');
    const preview = await tessera(['apply', cfgDir, '--reevaluate'], env);
    expect(preview.stdout).toMatch(/applied as version \d+/);
    expect(preview.stdout).toContain(`${live.body.grant_id}: re-evaluation: deploy freeze`);
    expect(preview.stdout).toMatch(/would be revoked\n[\s\S]*--reevaluate --yes/);
    const revoke = await tessera(['apply', cfgDir, '--reevaluate', '--yes'], env);
    expect(revoke.stdout).toMatch(/re-evaluated; \d+ revoked/);
    expect(revoke.stdout).toContain(`${live.body.grant_id}: re-evaluation: deploy freeze`);
    await import('node:fs/promises').then((fs) => fs.rm(path.join(cfgDir, 'freeze.cedar')));

    await writeFile(path.join(cfgDir, 'bad.yaml'), 'tasks:\n  - name: x\n    scopes: [a]\n    audience: b\n    workloads: [w]\n    ttl: 5\n');
    const bad = await tessera(['apply', cfgDir], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/tasks\.3: Unrecognized key: "ttl"/);
    const noKey = await tessera(['apply', cfgDir], { TESSERA_URL: broker.url });
    expect(noKey.code).toBeGreaterThan(0);
  });

  it('apply --dry-run: refuses a pasted private key, naming the member, and never prints it back', async () => {
    const leakDir = path.join(dir, 'leak');
    await mkdir(leakDir);
    await writeFile(path.join(leakDir, 'workloads.yaml'), stringify({ workloads: [{ id: 'leaky', kind: 'agent', owner: 'ops', public_keys: [agent.privateJwk] }] }));
    const leak = await tessera(['apply', leakDir, '--dry-run'], { TESSERA_ADMIN_KEY: TEST_ADMIN_KEY, TESSERA_URL: broker.url });
    expect(leak.code).toBe(1);
    expect(leak.stderr).toMatch(/workloads\.0\.public_keys\.0\.d: "d" is private key material/);
    expect(leak.stderr + leak.stdout).not.toContain(String(agent.privateJwk.d));
  });
});
