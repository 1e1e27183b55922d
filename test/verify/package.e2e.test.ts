import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, post, type TestBroker } from '../support/broker.js';
import { startFakeIssuer, type FakeIssuer } from '../support/fake-issuer.js';
import { agentKey, testConfig } from '../support/fixtures.js';

const run = promisify(execFile);
const ROOT = path.resolve('.');

let broker: TestBroker;
let ci: FakeIssuer;
beforeAll(async () => {
  ci = await startFakeIssuer({ now: () => broker.clock.now() });
  broker = await startTestBroker(testConfig(ci, (await agentKey()).jwk));
});
afterAll(async () => {
  await broker.stop();
  await ci.close();
});

// What a downstream service in plain JavaScript runs: the built package, through its exports map,
// in a node process without a TypeScript loader.
const consumer = `
import { createVerifier, VerificationError } from 'tessera/verify';
const verifier = createVerifier({ issuer: process.env.ISSUER, audience: 'https://deploy.example' });
const claims = await verifier.verify(process.env.TOKEN, { scope: 'deploy:write', task: 'deploy-prod' });
let refused = null;
try { await verifier.verify(process.env.TOKEN, { scope: 'deploy:admin' }); } catch (e) { refused = e instanceof VerificationError ? e.code : String(e); }
console.log(JSON.stringify({ sub: claims.sub, task: claims.task, refused }));
`;

describe('tessera/verify as a package', () => {
  it('builds to JavaScript that a plain node consumer imports by name and verifies a real token with', { timeout: 120_000 }, async () => {
    await run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.verify.json'], { cwd: ROOT });
    const minted = await post(`${broker.url}/v1/grants`, { task: 'deploy-prod', params: { service: 'api' } }, { authorization: `Bearer ${await ci.token()}` });
    expect(minted.status).toBe(201);
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', consumer], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, ISSUER: broker.url, TOKEN: String(minted.body.access_token) },
    });
    expect(JSON.parse(stdout)).toEqual({ sub: 'api-deploy', task: 'deploy-prod', refused: 'insufficient_scope' });
  });
});
