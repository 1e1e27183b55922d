import type { Request } from 'express';
import type { Deps } from '../deps.js';
import { authenticateResourceServer, type ResourceServer } from '../grants/resource-servers.js';
import { TesseraError } from '../lib/errors.js';

const invalidClient = (logDetail: string) => new TesseraError(401, 'invalid_client', 'Client authentication failed.', { logDetail });

/** The resource server behind a request's HTTP Basic credentials, or a 401 `invalid_client`. */
export async function resourceServerOf(deps: Deps, req: Request): Promise<ResourceServer> {
  const match = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(req.get('authorization') ?? '');
  if (!match) throw invalidClient('missing or malformed Basic authorization');
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw invalidClient('Basic credentials without a colon');
  let id: string;
  let secret: string;
  try {
    id = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
    secret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '));
  } catch {
    throw invalidClient('Basic credentials are not form-encoded');
  }
  const rs = await authenticateResourceServer(deps.db, id, secret);
  if (!rs) throw invalidClient(`unknown resource server or wrong secret for ${id.slice(0, 64)}`);
  return rs;
}

