import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { paced } from '../../scripts/bench/paced.js';

/** A real HTTP server whose handler each test sets; it records what arrived. */
async function server(handle: (req: http.IncomingMessage, body: string, res: http.ServerResponse) => void) {
  const seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string }> = [];
  const srv = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      handle(req, body, res);
    });
  });
  let connections = 0;
  srv.on('connection', () => connections++);
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  return { url, seen, connections: () => connections, close: () => new Promise<void>((resolve) => srv.close(() => resolve())) };
}

let stop: (() => Promise<void>) | undefined;
afterEach(async () => {
  await stop?.();
  stop = undefined;
});

describe('paced (the open-loop load generator on raw sockets)', () => {
  it('sends each request whole, reads each answer by Content-Length, and keeps connections alive', async () => {
    let n = 0;
    const s = await server((_req, body, res) => {
      const i = n++;
      // Every third answer in two writes, so the reader must wait for the rest of its body.
      const payload = JSON.stringify({ i, echo: JSON.parse(body) as unknown, pad: 'x'.repeat(3000) });
      res.writeHead(i % 5 === 4 ? 403 : 201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
      if (i % 3 === 0) {
        res.write(payload.slice(0, 100));
        setTimeout(() => res.end(payload.slice(100)), 5);
      } else res.end(payload);
    });
    stop = s.close;
    const bodies: Array<{ status: number; i: number }> = [];
    let token = 0;
    const r = await paced({
      url: s.url,
      rate: 200,
      durationSeconds: 0.5,
      method: 'POST',
      path: '/v1/grants?x=1',
      body: JSON.stringify({ task: 'deploy', note: 'é' }),
      headers: () => ({ authorization: `Bearer t${token++}` }),
      onResponse: (status, body) => bodies.push({ status, i: (JSON.parse(body) as { i: number }).i }),
    });
    expect(r.total).toBe(100);
    expect(r.errors).toBe(0);
    expect(r.statuses).toEqual({ 201: 80, 403: 20 });
    expect(r.ok).toBe(80);
    expect(r.non2xx).toBe(20);
    expect(bodies.map((b) => b.i).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(s.seen).toHaveLength(100);
    for (const req of s.seen) {
      expect(req.method).toBe('POST');
      expect(req.url).toBe('/v1/grants?x=1');
      expect(req.headers['content-type']).toBe('application/json');
      expect(JSON.parse(req.body)).toEqual({ task: 'deploy', note: 'é' });
    }
    expect(new Set(s.seen.map((x) => x.headers.authorization)).size).toBe(100);
    // Connections are reused: one is opened only when every open one is waiting for its answer.
    expect(s.connections()).toBeLessThan(30);
    // Evenly spaced at 200/s: the last request went out half a second after the first, not in a burst.
    expect(r.rps).toBeLessThanOrEqual(202);
    expect(r.rps).toBeGreaterThan(40);
  });

  it('counts a connection the server drops as an error and goes on with new connections', async () => {
    let n = 0;
    const s = await server((req, _body, res) => {
      if (n++ % 4 === 1) {
        req.socket.destroy();
        return;
      }
      res.setHeader('content-type', 'application/json');
      // Some answers close the connection after them: the generator must not reuse it.
      if (n % 4 === 3) res.setHeader('connection', 'close');
      res.end('{}');
    });
    stop = s.close;
    const r = await paced({ url: s.url, rate: 100, durationSeconds: 0.4, method: 'POST', path: '/', body: '{}', headers: () => ({}) });
    expect(r.errors).toBe(10);
    expect(r.total).toBe(30);
    expect(r.statuses).toEqual({ 200: 30 });
  });
});
