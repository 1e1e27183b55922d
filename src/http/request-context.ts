import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import { newId } from '../lib/ids.js';
import { httpDuration, routeLabel } from './http.metrics.js';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * Gives every request an id (the caller's X-Request-Id when well-formed) and logs one line when it
 * ends: method, path without query, status, duration; the duration is also counted by route
 * (tessera_http_request_duration_seconds), a request whose client left before its answer under the
 * status `aborted`. Headers and bodies are never logged.
 */
export function requestContext(log: Logger): RequestHandler {
  return (req, res, next) => {
    const given = req.get('x-request-id');
    const id = given && REQUEST_ID.test(given) ? given : newId();
    res.locals.requestId = id;
    res.setHeader('X-Request-Id', id);
    const started = process.hrtime.bigint();
    // 'close' follows 'finish', or comes alone when the client went away before its answer was sent.
    // A request whose client hung up midway through its body is aborted too, though the body reader's
    // 400 still finishes. A body the app refused without reading (a 401, a 415) is not: its rest is
    // read and dropped after the answer, and the request is complete only then.
    res.on('close', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const aborted = !res.writableFinished || req.readableAborted;
      httpDuration.observe(ms / 1000, { method: req.method, route: routeLabel(req, res), status: aborted ? 'aborted' : String(res.statusCode) });
      const status = aborted && !res.headersSent ? null : res.statusCode;
      log.info({ req_id: id, method: req.method, path: req.path, status, ms: Math.round(ms * 10) / 10, ...(aborted && { aborted }) }, aborted ? 'request aborted' : 'request');
    });
    next();
  };
}
