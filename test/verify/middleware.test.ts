import { createHash, randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import {
  createVerifier,
  requireTesseraToken,
  tesseraToken,
  type VerificationError,
} from '../../src/verify/index.js';
import { FakeBroker, NOW, NOW_S, makeKey, type SigningKey } from './fake-broker.js';

let broker: FakeBroker;
let key: SigningKey;
let server: Server;
let base: string;
const refused: VerificationError[] = [];

beforeAll(async () => {
  broker = await new FakeBroker().start();
  key = await makeKey('k1');
  broker.published = [key];
  await broker.publishStatusList(key, '/v1/status/1', [0, 1]);
  broker.failStatusList('/v1/status/down');

  const verifier = createVerifier({ issuer: broker.issuer, audience: 'payments', now: () => NOW });
  const guard = (scope: string) =>
    requireTesseraToken(verifier, { scope, task: 'refund-payment', onRefused: (err) => refused.push(err) });
  const app = express();
  app.post('/refunds', guard('payments:refund'), (_req, res) => {
    res.json(tesseraToken(res));
  });
  app.post('/admin', guard('payments:admin'), (_req, res) => {
    res.json({ ok: true });
  });
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await broker.stop();
});

function call(path: string, headers: Record<string, string> = {}) {
  return fetch(`${base}${path}`, { method: 'POST', headers });
}

describe('requireTesseraToken', () => {
  it('answers 200 and hands the claims to the route', async () => {
    const res = await call('/refunds', { authorization: `Bearer ${await broker.token(key)}` });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ sub: 'wl_agent_1', task: 'refund-payment', jti: 'grt_01' });
  });

  it('answers 401 with a bare challenge when no token is sent', async () => {
    const res = await call('/refunds');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
  });

  it('answers 401 invalid_token for an expired token and never echoes it', async () => {
    const token = await broker.token(key, { exp: NOW_S - 60 });
    const res = await call('/refunds', { authorization: `Bearer ${token}` });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer error="invalid_token", error_description="token expired"');
    const body = await res.text();
    expect(JSON.parse(body)).toEqual({ error: 'invalid_token', error_description: 'token expired' });
    expect(body).not.toContain(token.split('.')[1]);
    expect(refused.at(-1)?.cause).toBeDefined();
  });

  it('answers 401 invalid_token for a malformed Authorization header', async () => {
    const res = await call('/refunds', { authorization: 'Basic dXNlcjpwYXNz' });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it('answers 403 insufficient_scope for a missing scope, naming the scope needed', async () => {
    const res = await call('/admin', { authorization: `Bearer ${await broker.token(key)}` });
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toBe(
      'Bearer error="insufficient_scope", error_description="missing scope: payments:admin", scope="payments:admin"',
    );
    expect(await res.json()).toEqual({ error: 'insufficient_scope', error_description: 'missing scope: payments:admin' });
  });

  it('answers 403 insufficient_scope for a token issued for another task', async () => {
    const token = await broker.token(key, {
      task: 'deploy-prod',
      authorization_details: [{ type: 'tessera_task', task: 'deploy-prod', params: {} }],
    });
    const res = await call('/refunds', { authorization: `Bearer ${token}` });
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ error: 'insufficient_scope', error_description: 'token was issued for a different task' });
  });

  it('answers 401 for a revoked token and 503 when the status list is down', async () => {
    const revoked = await broker.token(key, { status: { status_list: { idx: 1, uri: broker.statusUri('/v1/status/1') } } });
    const res = await call('/refunds', { authorization: `Bearer ${revoked}` });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'invalid_token', error_description: 'token revoked' });
    const unknown = await broker.token(key, { status: { status_list: { idx: 0, uri: broker.statusUri('/v1/status/down') } } });
    const down = await call('/refunds', { authorization: `Bearer ${unknown}` });
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('5');
    expect(await down.json()).toEqual({ error: 'temporarily_unavailable', error_description: 'token status could not be checked' });
  });

  describe('with a DPoP-bound token', () => {
    let client: { privateKey: CryptoKey; jwk: JWK; jkt: string };
    beforeAll(async () => {
      const { privateKey, publicKey } = await generateKeyPair('ES256');
      const jwk = await exportJWK(publicKey);
      client = { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk) };
    });
    const bound = () => broker.token(key, { cnf: { jkt: client.jkt } });
    const proofFor = (token: string, htu: string) =>
      new SignJWT({ jti: randomUUID(), htm: 'POST', htu, iat: NOW_S, ath: createHash('sha256').update(token).digest('base64url') })
        .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: client.jwk })
        .sign(client.privateKey);

    it('answers 200 for the DPoP scheme with a valid proof', async () => {
      const token = await bound();
      const res = await call('/refunds?x=1', { authorization: `DPoP ${token}`, dpop: await proofFor(token, `${base}/refunds`) });
      expect(res.status).toBe(200);
    });

    it('answers 401 invalid_dpop_proof with a DPoP challenge for a proof made for another URL', async () => {
      const token = await bound();
      const res = await call('/refunds', { authorization: `DPoP ${token}`, dpop: await proofFor(token, `${base}/admin`) });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^DPoP error="invalid_dpop_proof", error_description="DPoP proof htu/);
    });

    it('answers 401 invalid_dpop_proof for the DPoP scheme without a DPoP header', async () => {
      const res = await call('/refunds', { authorization: `DPoP ${await bound()}` });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ error: 'invalid_dpop_proof', error_description: 'DPoP header missing' });
    });

    it('refuses a bound token presented as a Bearer token', async () => {
      const res = await call('/refunds', { authorization: `Bearer ${await bound()}` });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: 'invalid_dpop_proof' });
    });
  });
});
