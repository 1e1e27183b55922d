import { brokerUrl, call, describeError, UsageError, type Command } from '../command.js';
import { obtainIdentityToken } from '../identity-token.js';
import { waitForApproval } from '../wait-approval.js';

/** Approval ids are UUIDs; checked here so a typo is a usage error, not a 404 after fetching a token. */
const APPROVAL_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A step-up nobody decides expires after 15 minutes by default; waiting longer gains nothing. */
const DEFAULT_WAIT_TIMEOUT_SECONDS = 900;

const usage = `Usage: tessera token --task <name> [options]

Exchanges this workload's identity for a short-lived token for one task, and prints it.

Options:
  --task <name>                 the task to ask for (required)
  --param <key=value>           a task parameter; repeat for more. true/false become booleans and
                                plain decimals (12, -3, 12.5: no leading zero, no exponent, at most
                                15 significant digits) become numbers; anything else is a string (0042 stays "0042")
  --param <key:=json>           a parameter given as JSON, taken exactly: order_id:='"12345"' for a
                                string of digits, amount:=20, dry_run:=false
  --params <json>               all parameters as one JSON object (--param entries override it)
  --purpose <text>              why: recorded with the decision
  --ttl <seconds>               a shorter lifetime than the task's default
  --json                        print the whole response as JSON instead of the bare token
  --wait-timeout <seconds>      when the task needs an approval: how long to wait (default 900; then exit 3)
  --approval <id>               go on waiting for (and redeem) an approval an earlier run opened, instead
                                of asking again; give the same --task and parameters
  --broker <url>                broker base URL (env TESSERA_URL, default http://127.0.0.1:8080)

Identity (the first one available is used):
  --identity-token-file <file>  a file holding the identity JWT
  --identity-token-env <name>   an environment variable holding it (default TESSERA_IDENTITY_TOKEN)
  --assertion-key <file>        sign an RFC 7523 client assertion with this private JWK...
  --client-id <workload>        ...as this workload
  (GitHub Actions)              ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN, audience from --audience
  --audience <aud>              audience to request from GitHub Actions (default "tessera")

When policy asks for a step-up approval, the command waits: one progress line on stderr
("waiting for approval <id> (0/1 approvals, expires in 14m 58s)"), polling every 2 s; once
approved it redeems the approval with a fresh identity and prints the token. Denied or expired:
exit 1. Still pending at --wait-timeout: exit 3, and --approval <id> resumes the wait later
without opening a second request for the approvers.

Examples:
  tessera token --task deploy-prod --param service=api
  TOKEN=$(tessera token --task refund-payment --param order_id=ord_1234 --param amount=20)
  tessera token --task refund-payment --param order_id:='"12345"' --param amount=20
  tessera token --task export-data --param destination=s3://new --approval 0193…  # resume a wait`;

/**
 * A `key=value` value that reads the same as a JSON number: no leading zeros, no exponent, and at
 * most 15 significant digits, which a double holds exactly (`0042`, `1e3` and long numeric ids stay
 * strings, so nothing is silently rounded or reinterpreted).
 */
const PLAIN_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?$/;
const MAX_EXACT_DIGITS = 15;

/**
 * Parses one `--param`: `key:=<json>` is taken as JSON exactly; in `key=value`, `true`/`false` and
 * plain decimal numbers are typed and anything else is a string.
 */
export function parseParam(kv: string): [string, unknown] {
  const i = kv.indexOf('=');
  const json = i > 0 && kv[i - 1] === ':';
  const key = kv.slice(0, json ? i - 1 : i);
  if (i < 0 || !key) throw new UsageError(`--param expects key=value or key:=<json>, got "${kv}"`);
  const raw = kv.slice(i + 1);
  if (json) {
    try {
      return [key, JSON.parse(raw) as unknown];
    } catch {
      throw new UsageError(`--param ${key}:= expects a JSON value (strings in double quotes), got ${raw}`);
    }
  }
  if (raw === 'true' || raw === 'false') return [key, raw === 'true'];
  const significantDigits = raw.replace(/[-.]/g, '').replace(/^0+/, '').length;
  return [key, PLAIN_NUMBER.test(raw) && significantDigits <= MAX_EXACT_DIGITS ? Number(raw) : raw];
}

function parseParamsObject(text: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new UsageError('--params must be a JSON object');
  return parsed as Record<string, unknown>;
}

export const tokenCommand: Command = {
  name: 'token',
  summary: 'get a short-lived token for a task (what a CI job or agent runs)',
  usage,
  options: {
    task: { type: 'string' },
    param: { type: 'string', multiple: true },
    params: { type: 'string' },
    purpose: { type: 'string' },
    ttl: { type: 'string' },
    json: { type: 'boolean' },
    'identity-token-file': { type: 'string' },
    'identity-token-env': { type: 'string' },
    'assertion-key': { type: 'string' },
    'client-id': { type: 'string' },
    audience: { type: 'string' },
    'wait-timeout': { type: 'string' },
    approval: { type: 'string' },
  },
  async run(v) {
    if (!v.task) throw new UsageError('--task is required');
    const broker = brokerUrl(v);
    const params = v.params ? parseParamsObject(String(v.params)) : {};
    for (const kv of (v.param as string[] | undefined) ?? []) {
      const [k, val] = parseParam(kv);
      params[k] = val;
    }
    const meta = await call(`${broker}/.well-known/oauth-authorization-server`, {});
    // Recomputed for every call: assertions are single use, and a wait may outlive a CI token.
    const identityToken = () =>
      obtainIdentityToken({
        identityTokenFile: v['identity-token-file'] as string | undefined,
        identityTokenEnv: v['identity-token-env'] as string | undefined,
        assertionKey: v['assertion-key'] as string | undefined,
        clientId: v['client-id'] as string | undefined,
        audience: v.audience as string | undefined,
        broker: String(meta.body.issuer ?? broker),
      });
    const waitTimeout = Number(v['wait-timeout'] ?? DEFAULT_WAIT_TIMEOUT_SECONDS);
    if (!(Number.isInteger(waitTimeout) && waitTimeout > 0)) throw new UsageError('--wait-timeout must be a positive whole number of seconds');
    const ttl = v.ttl === undefined ? undefined : Number(v.ttl);
    if (ttl !== undefined && !(Number.isInteger(ttl) && ttl > 0)) throw new UsageError('--ttl must be a positive whole number of seconds');
    const request = { task: String(v.task), params };
    const wait = (pending: Record<string, unknown>, opened: string) =>
      waitForApproval({ pending, identity: identityToken, opened, request, waitTimeoutMs: waitTimeout * 1000, progress: process.stderr, resume: { task: request.task, params } });
    if (v.approval !== undefined) {
      const id = String(v.approval);
      if (!APPROVAL_ID.test(id)) throw new UsageError(`--approval expects an approval id (a UUID), got "${id}"`);
      if (v.ttl !== undefined || v.purpose !== undefined) throw new UsageError('--ttl and --purpose were fixed by the request that was approved; leave them out with --approval');
      const issuer = String(meta.body.issuer ?? broker);
      // The identity that opened it is not known here; the broker itself refuses one older than the request.
      const waited = await wait({ approval_id: id, poll: `${issuer}/v1/approvals/${id}`, redeem: `${issuer}/v1/approvals/${id}/redeem` }, '');
      if ('exit' in waited) return waited.exit;
      return print(waited.token, Boolean(v.json));
    }
    const identity = await identityToken();
    let res = await call(`${broker}/v1/grants`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${identity}` },
      body: JSON.stringify({ task: v.task, params, purpose: v.purpose, ttl_seconds: ttl }),
    });
    if (res.status === 202) {
      const waited = await wait(res.body, identity);
      if ('exit' in waited) return waited.exit;
      res = { status: 201, body: waited.token };
    }
    if (res.status !== 201) {
      process.stderr.write(`tessera token: ${describeError(res.status, res.body)}\n`);
      return 1;
    }
    return print(res.body, Boolean(v.json));
  },
};

/** The token on stdout (bare, for `TOKEN=$(…)`), or the whole response with --json. */
function print(body: Record<string, unknown>, json: boolean): number {
  process.stdout.write(json ? `${JSON.stringify(body, null, 2)}\n` : `${String(body.access_token)}\n`);
  return 0;
}
