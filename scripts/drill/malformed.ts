import { generateKeyPairSync } from 'node:crypto';
import net from 'node:net';
import { signEs256 } from '../../src/keys/jws.js';
import { spawnBroker } from '../lib/broker-process.js';
import { MINT_BODY } from '../lib/identities.js';
import { summarize } from '../lib/stats.js';
import { mint } from './load.js';
import { verdict, type Drill } from './drill.js';

const REQUESTS = 10_000;
const CLIENTS = 32;
const SOCKET_TIMEOUT_MS = 5_000;
/**
 * Memory is bounded when it levels off: a second run of REQUESTS after the first may grow RSS only by
 * this much. The first run's growth is V8 sizing its heap for the load (seen 83-124 MiB, more on a
 * faster machine, which allocates faster), socket buffers and JIT code; a leak proportional to the
 * requests would grow the second run as much again.
 */
const SECOND_RUN_GROWTH_LIMIT_BYTES = 32 * 2 ** 20;
/** A sanity bound on the first run's growth. */
const FIRST_RUN_GROWTH_LIMIT_BYTES = 192 * 2 ** 20;

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** Raw HTTP/1.1 requests (bytes on a socket, so the client library cannot tidy them), each refused with a 4xx. */
function cases(issuerUrl: string, jwtFromKnownIssuer: () => string): Array<{ name: string; raw: () => Buffer }> {
  const http = (method: string, path: string, headers: Record<string, string>, body = '') =>
    Buffer.from(`${method} ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  const json = { 'Content-Type': 'application/json' };
  const bearer = (t: string) => ({ ...json, Authorization: `Bearer ${t}` });
  const grants = (h: Record<string, string>, body = MINT_BODY) => http('POST', '/v1/grants', h, body);
  const form = (body: string) => http('POST', '/oauth2/token', { 'Content-Type': 'application/x-www-form-urlencoded' }, body);
  const rnd = () => Math.random().toString(36).slice(2);
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const signed = (header: Record<string, unknown>, payload: Record<string, unknown>) => signEs256(header, payload, privateKey);
  const now = Math.floor(Date.now() / 1000);
  return [
    { name: 'json: truncated', raw: () => grants(bearer('a.b.c'), '{"task":') },
    { name: 'json: array body', raw: () => grants(bearer('a.b.c'), '[]') },
    { name: 'json: null', raw: () => grants(bearer('a.b.c'), 'null') },
    { name: 'json: deep nesting', raw: () => grants(bearer('a.b.c'), `{"task":"x","params":${'['.repeat(3000)}${']'.repeat(3000)}}`) },
    { name: 'json: 100 KB body', raw: () => grants(bearer('a.b.c'), `{"task":"${'x'.repeat(100_000)}"}`) },
    { name: 'json: NUL and junk unicode', raw: () => grants(bearer('a.b.c'), '{"task":"\\u0000\\ud800\\uffff","params":{"\\u0000":1}}') },
    { name: 'json: __proto__ and constructor', raw: () => grants(bearer('a.b.c'), '{"task":"bench-deploy","__proto__":{"admin":true},"params":{"constructor":{"prototype":{}}}}') },
    { name: 'json: unknown fields, wrong types', raw: () => grants(bearer('a.b.c'), `{"task":${Math.random()},"params":"${rnd()}","ttl_seconds":-1,"x":1}`) },
    { name: 'content-type text/plain', raw: () => grants({ 'Content-Type': 'text/plain', Authorization: 'Bearer a.b.c' }) },
    { name: 'charset utf-16', raw: () => grants({ 'Content-Type': 'application/json; charset=utf-16', Authorization: 'Bearer a.b.c' }) },
    { name: 'gzip encoding, not gzip', raw: () => grants({ ...json, 'Content-Encoding': 'gzip', Authorization: 'Bearer a.b.c' }) },
    { name: 'auth: missing', raw: () => grants(json) },
    { name: 'auth: Basic', raw: () => grants({ ...json, Authorization: `Basic ${b64('a:b')}` }) },
    { name: 'auth: random bearer', raw: () => grants(bearer(rnd())) },
    { name: 'auth: three random segments', raw: () => grants(bearer(`${rnd()}.${rnd()}.${rnd()}`)) },
    { name: 'auth: alg none', raw: () => grants(bearer(`${b64({ alg: 'none' })}.${b64({ iss: issuerUrl, sub: 'x' })}.`)) },
    { name: 'auth: HS256', raw: () => grants(bearer(`${b64({ alg: 'HS256' })}.${b64({ iss: issuerUrl, sub: 'x' })}.${b64('sig')}`)) },
    { name: 'auth: jku header', raw: () => grants(bearer(signed({ jku: 'http://evil/jwks', kid: 'x' }, { iss: issuerUrl, sub: 'x', aud: 'tessera', iat: now, exp: now + 60 }))) },
    { name: 'auth: right issuer, wrong key', raw: () => grants(bearer(signed({ kid: 'bench-ci-k1' }, { iss: issuerUrl, sub: 'x', aud: 'tessera', iat: now, exp: now + 60 }))) },
    { name: 'auth: unknown kid (no JWKS refetch storm)', raw: () => grants(bearer(signed({ kid: rnd() }, { iss: issuerUrl, sub: 'x', aud: 'tessera', iat: now, exp: now + 60 }))) },
    { name: 'auth: valid token, tampered payload', raw: () => { const [h, , s] = jwtFromKnownIssuer().split('.'); return grants(bearer(`${h}.${b64({ iss: issuerUrl, sub: 'admin', aud: 'tessera' })}.${s}`)); } },
    { name: 'auth: payload not JSON', raw: () => grants(bearer(`${b64({ alg: 'ES256' })}.${b64('not json')}.${b64('x')}`)) },
    { name: 'auth: 20 KB token', raw: () => grants(bearer('a'.repeat(20_000))) },
    { name: 'auth: broker-typed token as identity', raw: () => grants(bearer(signed({ typ: 'at+jwt', kid: 'bench-ci-k1' }, { iss: issuerUrl, sub: 'x' }))) },
    { name: 'valid identity, unknown task', raw: () => grants(bearer(jwtFromKnownIssuer()), `{"task":"${rnd()}"}`) },
    { name: 'valid identity, bad params', raw: () => grants(bearer(jwtFromKnownIssuer()), '{"task":"bench-deploy","params":{"service":"db","x":[1,2]}}') },
    { name: 'oauth: wrong grant_type', raw: () => form(`grant_type=${rnd()}`) },
    { name: 'oauth: missing subject_token', raw: () => form('grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange') },
    { name: 'oauth: authorization_details not JSON', raw: () => form(`grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=a.b.c&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt&authorization_details=%7B${rnd()}`) },
    { name: 'oauth: 500 parameters', raw: () => form(Array.from({ length: 500 }, (_, i) => `p${i}=${i}`).join('&')) },
    { name: 'oauth: nested brackets', raw: () => form('grant_type[a][b][c]=1&subject_token[]=x') },
    { name: 'path: bad percent-encoding', raw: () => http('POST', '/v1/grants/%E0%A4%A/complete', json, '{}') },
    { name: 'path: not a uuid', raw: () => http('POST', `/v1/grants/${rnd()}/complete`, bearer('a.b.c'), '{}') },
    { name: 'path: traversal', raw: () => http('GET', '/v1/../../etc/passwd', {}) },
    { name: 'admin: no key', raw: () => http('POST', '/v1/admin/config', json, '{}') },
    { name: 'admin: junk key', raw: () => http('POST', '/v1/admin/config', { ...json, Authorization: `Bearer ${rnd()}` }, '{}') },
    { name: 'http: garbage request line', raw: () => Buffer.from(`${rnd()} ${rnd()}\r\n\r\n`) },
    { name: 'http: unknown method', raw: () => Buffer.from('FOO /v1/grants HTTP/1.1\r\nHost: x\r\n\r\n') },
    { name: 'http: header without colon', raw: () => Buffer.from('POST /v1/grants HTTP/1.1\r\nHost: x\r\nBroken header\r\n\r\n') },
    { name: 'http: control chars in header', raw: () => Buffer.from('POST /v1/grants HTTP/1.1\r\nHost: x\r\nX-A: a\x01\x7fb\r\n\r\n') },
    { name: 'http: conflicting content-length', raw: () => Buffer.from('POST /v1/grants HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n{}') },
    { name: 'http: negative content-length', raw: () => Buffer.from('POST /v1/grants HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n') },
    { name: 'http: bad chunk size', raw: () => Buffer.from('POST /v1/grants HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n') },
    { name: 'http: 20 KB header', raw: () => Buffer.from(`POST /v1/grants HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`) },
    { name: 'http: 200 headers', raw: () => Buffer.from(`GET /v1/grants HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 200 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`) },
    { name: 'http: junk x-request-id', raw: () => grants({ ...json, 'X-Request-Id': `../${'%'.repeat(300)}` }) },
  ];
}

/** Sends raw bytes, returns the status of the first response line (0 when the server closed or timed out without one). */
function send(port: number, raw: Buffer): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    const done = (status: number) => {
      socket.destroy();
      resolve({ status, ms: performance.now() - started });
    };
    socket.setTimeout(SOCKET_TIMEOUT_MS, () => done(0));
    socket.on('error', () => done(Number(/^HTTP\/1\.[01] (\d{3})/.exec(data)?.[1] ?? 0)));
    socket.on('data', (d) => {
      data += d.toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(data);
      if (m) done(Number(m[1]));
    });
    socket.on('end', () => done(Number(/^HTTP\/1\.[01] (\d{3})/.exec(data)?.[1] ?? 0)));
    socket.write(raw);
  });
}

/** 10,000 malformed bodies, headers and request lines, twice: only 4xx, no crash, memory that levels off. */
export const malformedInput: Drill = async (ctx) => {
  const broker = await spawnBroker({ ...ctx.pg.broker, configDir: ctx.configDir, kek: ctx.kek });
  try {
    const port = Number(new URL(broker.url).port);
    const list = cases(ctx.issuer.url, () => ctx.issuer.token());
    const rssBefore = broker.rssBytes();
    const perCase = new Map<string, Record<number, number>>();
    const latencies: number[] = [];
    /** REQUESTS malformed requests from CLIENTS sockets; the peak RSS seen during them (from `start`). */
    const run = async (start: number) => {
      let next = 0;
      let rssPeak = start;
      await Promise.all(
        Array.from({ length: CLIENTS }, async () => {
          while (next < REQUESTS) {
            const c = list[next++ % list.length]!;
            const { status, ms } = await send(port, c.raw());
            latencies.push(ms);
            const counts = perCase.get(c.name) ?? {};
            counts[status] = (counts[status] ?? 0) + 1;
            perCase.set(c.name, counts);
            if (next % 250 === 0 && broker.alive()) rssPeak = Math.max(rssPeak, broker.rssBytes());
          }
        }),
      );
      return rssPeak;
    };
    const firstPeak = await run(rssBefore);
    // The second run's growth counts from the highest the first run reached or left behind.
    const between = broker.alive() ? broker.rssBytes() : NaN;
    const secondPeak = broker.alive() ? await run(between) : NaN;
    const alive = broker.alive();
    const rssAfter = alive ? broker.rssBytes() : NaN;
    const stillMints = alive ? (await mint(broker.url, `Bearer ${ctx.issuer.token()}`, performance.now())).status : 0;
    const statuses: Record<number, number> = {};
    for (const counts of perCase.values()) for (const [s, n] of Object.entries(counts)) statuses[Number(s)] = (statuses[Number(s)] ?? 0) + n;
    const bad = [...perCase].filter(([, counts]) => Object.keys(counts).some((s) => Number(s) < 400 || Number(s) >= 500)).map(([name, counts]) => `${name} ${JSON.stringify(counts)}`);
    const mib = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;
    return verdict('10,000 malformed bodies and headers (and 10,000 more)', {
      'only 4xx answers': bad.length === 0,
      'broker alive and still minting': alive && stillMints === 201,
      [`memory levels off: a second ${REQUESTS.toLocaleString("en")} grow RSS under ${mib(SECOND_RUN_GROWTH_LIMIT_BYTES)} MiB (the first under ${mib(FIRST_RUN_GROWTH_LIMIT_BYTES)})`]:
        alive && secondPeak - Math.max(firstPeak, between) < SECOND_RUN_GROWTH_LIMIT_BYTES && firstPeak - rssBefore < FIRST_RUN_GROWTH_LIMIT_BYTES,
    }, {
      requests: REQUESTS * 2,
      kinds: list.length,
      statuses,
      notFourXx: bad,
      latencyMs: summarize(latencies),
      rssMiB: { before: mib(rssBefore), firstRunPeak: mib(firstPeak), between: mib(between), secondRunPeak: mib(secondPeak), after: mib(rssAfter) },
      mintAfterwards: stillMints,
      ...(bad.length ? { brokerErrorLog: [...new Set(broker.errorLines().map(summarizeLogLine))].slice(0, 5) } : {}),
    });
  } finally {
    await broker.stop();
  }
};

/** The message and error of a pino error line, without the noise. */
function summarizeLogLine(line: string): string {
  try {
    const l = JSON.parse(line) as { msg?: string; path?: string; err?: { type?: string; message?: string; stack?: string } };
    return `${l.path ?? ''} ${l.msg ?? ''}: ${l.err?.type ?? ''} ${l.err?.message ?? ''} ${l.err?.stack?.split('\n')[1]?.trim() ?? ''}`;
  } catch {
    return line.slice(0, 300);
  }
}
