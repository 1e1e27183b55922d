import { call, describeError } from './command.js';

/** Exit code when the wait timed out with the request still pending (1 is a refusal, 2 a usage error). */
export const EXIT_WAIT_TIMEOUT = 3;
/** Poll every 2 s unless the broker asks for another interval. */
const DEFAULT_POLL_SECONDS = 2;

export interface WaitOptions {
  /** The 202 body: approval_id, poll and redeem URLs, interval. */
  pending: Record<string, unknown>;
  /** A fresh identity token for each call (assertions are single use). */
  identity: () => Promise<string>;
  /** The identity token that opened the request: the broker refuses it for the redeem. */
  opened: string;
  /** What the redeem repeats: the same task and parameters. */
  request: { task: string; params: Record<string, unknown> };
  waitTimeoutMs: number;
  /** What the give-up message tells the user to run to resume the wait. */
  resume?: { task: string; params: Record<string, unknown> };
  /** Where the progress line goes (stderr; stdout stays the token). */
  progress: NodeJS.WriteStream;
}

/** The parameters as `--param key:=json` arguments, shell-quoted, each followed by a space. */
const paramArgs = (params: Record<string, unknown>) =>
  Object.entries(params).map(([k, v]) => `--param '${`${k}:=${JSON.stringify(v)}`.replace(/'/g, `'\\''`)}' `).join('');

const duration = (ms: number) => {
  const s = Math.max(0, Math.round(ms / 1000));
  return s >= 60 ? `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s` : `${s}s`;
};

/**
 * Waits for a step-up approval, one progress line on stderr updated in place, then redeems it with a
 * fresh identity. Resolves to the redeem's answer, or to an exit code when it was denied, expired, or
 * the wait timed out.
 */
export async function waitForApproval(o: WaitOptions): Promise<{ token: Record<string, unknown> } | { exit: number }> {
  const id = String(o.pending.approval_id);
  const interval = Number(o.pending.interval ?? DEFAULT_POLL_SECONDS) * 1000;
  const deadline = Date.now() + o.waitTimeoutMs;
  const tty = o.progress.isTTY;
  const line = (text: string) => o.progress.write(tty ? `\r\x1b[K${text}` : `${text}\n`);
  let last = '';
  for (;;) {
    const res = await call(String(o.pending.poll), { headers: { authorization: `Bearer ${await o.identity()}` } });
    if (res.status !== 200) {
      o.progress.write(`${tty ? '\n' : ''}tessera token: ${describeError(res.status, res.body)}\n`);
      return { exit: 1 };
    }
    const status = String(res.body.status);
    if (status === 'approved') {
      if (tty) o.progress.write('\n');
      // GitHub Actions and --assertion-key give a new token on every call; a file or variable may not.
      const fresh = await o.identity();
      const redeemed =
        fresh === o.opened
          ? { status: 403, body: { code: 'stale_identity' } }
          : await call(String(o.pending.redeem), { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${fresh}` }, body: JSON.stringify(o.request) });
      if (redeemed.body.code === 'stale_identity') {
        o.progress.write(
          `tessera token: approval ${id} was approved, but redeeming it needs an identity token issued after the request, and the identity source ` +
            `(a token file or variable) still gives the one that asked or an older one. Use --assertion-key or GitHub Actions, which fetch a new token ` +
            `for the redeem, or redeem it before it expires: POST ${String(o.pending.redeem)} with a new token and the same task and parameters.\n`,
        );
        return { exit: 1 };
      }
      if (redeemed.status !== 201) {
        o.progress.write(`tessera token: ${describeError(redeemed.status, redeemed.body)}\n`);
        return { exit: 1 };
      }
      return { token: redeemed.body };
    }
    if (status !== 'pending') {
      o.progress.write(`${tty ? '\n' : ''}tessera token: approval ${id} was ${status}\n`);
      return { exit: 1 };
    }
    const text = `waiting for approval ${id} (${String(res.body.approvals)}/${String(res.body.required_approvals)} approvals, expires in ${duration(Date.parse(String(res.body.expires_at)) - Date.now())})`;
    // Off a terminal (CI logs) a line is printed only when it says something new.
    if (tty || text.replace(/expires in .*/, '') !== last.replace(/expires in .*/, '')) line(text);
    last = text;
    if (Date.now() + interval > deadline) {
      const again = o.resume && `; wait again with: tessera token --task ${o.resume.task} ${paramArgs(o.resume.params)}--approval ${id}`;
      o.progress.write(`${tty ? '\n' : ''}tessera token: gave up waiting for approval ${id} after ${duration(o.waitTimeoutMs)}; it is still pending${again ?? ''}\n`);
      return { exit: EXIT_WAIT_TIMEOUT };
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}
