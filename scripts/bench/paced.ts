import net from 'node:net';
import { sleep, summarize } from '../lib/stats.js';
import type { StepResult } from './cannon.js';

export interface PacedStep {
  url: string;
  /** Requests per second, evenly spaced. */
  rate: number;
  durationSeconds: number;
  method: 'POST';
  path: string;
  body: string;
  headers: () => Record<string, string>;
  onResponse?: (status: number, body: string) => void;
}

/**
 * Starts `op` `total` times, the i-th at `started` + i / rate (ms, performance.now()), whatever the
 * ones before it are doing, and waits for all of them; each gets its planned moment to count from.
 */
export async function pace(rate: number, total: number, started: number, op: (plannedAt: number) => Promise<void>): Promise<void> {
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const plannedAt = started + (i * 1000) / rate;
    const wait = plannedAt - performance.now();
    if (wait > 1) await sleep(wait);
    inFlight.push(op(plannedAt));
  }
  await Promise.all(inFlight);
}

/** Sockets kept open for the step: enough that a slow answer never delays the next send. */
const MAX_SOCKETS = 256;
const HEAD_END = Buffer.from('\r\n\r\n');

/** An answer as the load generator reads it: the status, and the body if there is one. */
interface Answer {
  status: number;
  body: string;
}

/**
 * One keep-alive connection that carries one request at a time and reads its answer by Content-Length
 * (the broker always sends one): the little of HTTP/1.1 the load needs, at a fraction of node:http's CPU.
 */
class Connection {
  readonly #socket: net.Socket;
  #buffered: Buffer = Buffer.alloc(0);
  #pending: { resolve: (a: Answer) => void; reject: (err: Error) => void } | undefined;
  readonly #onClose: (c: Connection) => void;
  closed = false;

  constructor(host: string, port: number, onClose: (c: Connection) => void) {
    this.#onClose = onClose;
    this.#socket = net.connect({ host, port, noDelay: true });
    this.#socket.on('data', (chunk: Buffer) => this.#read(chunk));
    const fail = (err: Error) => {
      const pending = this.#pending;
      this.#pending = undefined;
      this.close();
      pending?.reject(err);
    };
    this.#socket.on('error', fail);
    this.#socket.on('close', () => fail(new Error('connection closed')));
  }

  send(request: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      this.#pending = { resolve, reject };
      this.#socket.write(request);
    });
  }

  /** Ends the connection (once) and tells the pool. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.#socket.destroy();
    this.#onClose(this);
  }

  #read(chunk: Buffer): void {
    this.#buffered = this.#buffered.length ? Buffer.concat([this.#buffered, chunk]) : chunk;
    const headEnd = this.#buffered.indexOf(HEAD_END);
    if (headEnd < 0) return;
    const head = this.#buffered.toString('latin1', 0, headEnd);
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (!length) {
      this.#socket.destroy(new Error(`an answer without Content-Length: ${head.split('\r\n')[0]}`));
      return;
    }
    const end = headEnd + HEAD_END.length + Number(length[1]);
    if (this.#buffered.length < end) return;
    const answer = { status: Number(head.slice(9, 12)), body: this.#buffered.toString('utf8', headEnd + HEAD_END.length, end) };
    this.#buffered = this.#buffered.subarray(end);
    const pending = this.#pending;
    this.#pending = undefined;
    if (/\r\nconnection: *close/i.test(head)) this.close();
    pending?.resolve(answer);
  }
}

/**
 * An open-loop load at a fixed rate: request i is sent at start + i / rate whatever the answers before
 * it did, and its latency counts from that planned moment (no coordinated omission). autocannon's
 * rate option sends each second's quota back to back and then waits, which measures bursts at full
 * concurrency rather than a steady 70 % load. The requests go out on raw keep-alive sockets: through
 * node:http the generator itself cost 226-340 µs of CPU a request (autocannon about 100), a sixth of
 * the 2 cores at the 70 % step's rate, taken from the broker and Postgres it measures.
 */
export async function paced(step: PacedStep): Promise<StepResult> {
  const target = new URL(step.path, step.url);
  const host = target.hostname;
  const port = Number(target.port || 80);
  const head = `${step.method} ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(step.body)}\r\n`;
  const idle: Connection[] = [];
  const all = new Set<Connection>();
  const waiting: Array<(c: Connection) => void> = [];
  const forget = (c: Connection) => {
    all.delete(c);
    const i = idle.indexOf(c);
    if (i >= 0) idle.splice(i, 1);
    if (waiting.length) waiting.shift()!(open());
  };
  const open = () => {
    const c = new Connection(host, port, forget);
    all.add(c);
    return c;
  };
  const acquire = (): Promise<Connection> => {
    const c = idle.pop();
    if (c) return Promise.resolve(c);
    if (all.size < MAX_SOCKETS) return Promise.resolve(open());
    return new Promise((resolve) => waiting.push(resolve));
  };
  const release = (c: Connection) => {
    if (c.closed) return;
    const next = waiting.shift();
    if (next) next(c);
    else idle.push(c);
  };

  const total = Math.round(step.rate * step.durationSeconds);
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  const started = performance.now();
  const send = async (plannedAt: number) => {
    const headers = Object.entries(step.headers()).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    const c = await acquire();
    try {
      const { status, body } = await c.send(`${head}${headers}\r\n${step.body}`);
      latencies.push(performance.now() - plannedAt);
      statuses[status] = (statuses[status] ?? 0) + 1;
      step.onResponse?.(status, body);
    } catch {
      errors++;
    } finally {
      release(c);
    }
  };
  await pace(step.rate, total, started, send);
  const seconds = (performance.now() - started) / 1000;
  for (const c of [...all]) c.close();
  const ok = Object.entries(statuses).reduce((n, [s, c]) => (s.startsWith('2') ? n + c : n), 0);
  const answered = Object.values(statuses).reduce((a, b) => a + b, 0);
  return { ...summarize(latencies), rps: answered / seconds, total: answered, ok, non2xx: answered - ok, errors, timeouts: 0, statuses };
}
