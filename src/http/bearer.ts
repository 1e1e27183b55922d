import type { Request } from 'express';
import { TesseraError } from '../lib/errors.js';

/** The bearer credential of a request; a missing or malformed header is a generic 401. */
export function bearerToken(req: Request): string {
  const header = req.get('authorization') ?? '';
  const match = /^(?:Bearer|DPoP) ([A-Za-z0-9._~+/=-]+)$/i.exec(header);
  if (!match) {
    throw new TesseraError(401, 'invalid_token', 'A bearer credential is required.', { logDetail: 'missing or malformed Authorization header' });
  }
  return match[1]!;
}
