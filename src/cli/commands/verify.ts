import { readFileSync } from 'node:fs';
import { brokerUrl, call, UsageError, type Command } from '../command.js';
import { createVerifier, VerificationError } from '../../verify/index.js';

const usage = `Usage: tessera verify [options] <token | ->

Verifies a tessera access token the way a downstream service does: signature through the broker's
JWKS, issuer, audience, expiry, the status list, and optionally scope and task. Prints the claims.

Options:
  --audience <aud>   the audience this service accepts (required)
  --scope <scope>    a scope the token must carry; repeat for more
  --task <name>      the task the token must be for
  --issuer <url>     the expected issuer (default: the broker's, from its metadata)
  --broker <url>     broker base URL (env TESSERA_URL, default http://127.0.0.1:8080)
  (give - as the token to read it from standard input)`;

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'verify an access token as a downstream service would (JWKS, audience, status)',
  usage,
  allowPositionals: true,
  options: { audience: { type: 'string' }, scope: { type: 'string', multiple: true }, task: { type: 'string' }, issuer: { type: 'string' } },
  async run(v, positionals) {
    if (positionals.length !== 1) throw new UsageError('give exactly one token (or - for standard input)');
    if (!v.audience) throw new UsageError('--audience is required: a service accepts tokens for its own audience only');
    const token = positionals[0] === '-' ? readFileSync(0, 'utf8').trim() : positionals[0]!;
    const broker = brokerUrl(v);
    const issuer = (v.issuer as string | undefined) ?? String((await call(`${broker}/.well-known/oauth-authorization-server`, {})).body.issuer ?? broker);
    const verifier = createVerifier({ issuer, audience: String(v.audience), jwksUri: `${broker}/.well-known/jwks.json` });
    try {
      const claims = await verifier.verify(token, { scope: v.scope as string[] | undefined, task: v.task as string | undefined });
      process.stdout.write(`${JSON.stringify(claims, null, 2)}\n`);
      return 0;
    } catch (err) {
      if (err instanceof VerificationError) {
        process.stderr.write(`tessera verify: invalid: ${err.code}: ${err.message}\n`);
        return 1;
      }
      throw err;
    }
  },
};
