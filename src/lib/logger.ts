import { pino, type Logger } from 'pino';

/**
 * Paths pino removes wherever they appear, as a second line of defence: the broker never passes
 * tokens, keys or secrets to the logger on purpose.
 */
const REDACT = [
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  '*.token',
  '*.access_token',
  '*.subject_token',
  '*.actor_token',
  '*.client_assertion',
  '*.assertion',
  '*.password',
  '*.secret',
  '*.api_key',
  '*.private_key',
  '*.d',
];

/** The broker's structured JSON logger. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { service: 'tessera' }, redact: { paths: REDACT, censor: '[redacted]' } }, destination);
}
