import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';

/**
 * The one way routes parse bodies: strict JSON or a urlencoded form, with a size limit, and no
 * Content-Encoding (a compressed body is refused with 415 rather than inflated: request bodies here
 * are small, and an inflate step is one more way to make the parser fail or balloon). `verify` sees
 * the raw bytes before they are parsed (a signed request's body digest).
 */
export const jsonBody = (limit: string, verify?: (req: IncomingMessage, res: ServerResponse, raw: Buffer) => void) =>
  express.json({ limit, strict: true, inflate: false, ...(verify && { verify }) });

/** A urlencoded OAuth form (RFC 6749 §3.2): flat, bounded in size and number of parameters. */
export const formBody = (limit: string, parameterLimit: number) => express.urlencoded({ extended: false, limit, parameterLimit, inflate: false });
