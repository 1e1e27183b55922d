import type { CedarValueJson } from '@cedar-policy/cedar-wasm/nodejs';
import type { CedarKind } from './cedar-schema.js';
import type { PolicyValue } from './policy-request.js';

/** Cedar decimals keep exactly four fractional digits. */
const DECIMAL_DIGITS = 4;
/** Cedar decimals are an i64 scaled by 10^4; staying below this keeps the string in range. */
const DECIMAL_LIMIT = 922_337_203_685_477;

/** A value that cannot be handed to Cedar without changing its meaning. */
export class CedarValueError extends Error {
  override name = 'CedarValueError';
}

/**
 * The Cedar decimal literal for a number. A number with more than four fractional digits is refused
 * rather than rounded: 100.00001 rounded to 100.0000 would slip under a `<= 100` limit.
 */
export function toCedarDecimal(n: number): string {
  if (!Number.isFinite(n) || Math.abs(n) >= DECIMAL_LIMIT) throw new CedarValueError(`${n} is outside Cedar's decimal range`);
  const text = (Object.is(n, -0) ? 0 : n).toFixed(DECIMAL_DIGITS);
  if (Number(text) !== n) throw new CedarValueError(`${n} has more than ${DECIMAL_DIGITS} decimal places`);
  return text;
}

/**
 * Encodes one value for a Cedar context. Values of unknown names or of the wrong JSON type pass
 * through unchanged: Cedar's request validation then refuses them with a precise message.
 */
export function toCedarValue(kind: CedarKind | undefined, value: PolicyValue, name: string): CedarValueJson {
  if (typeof value !== 'number') return value;
  if (kind === 'decimal') {
    try {
      return { __extn: { fn: 'decimal', arg: toCedarDecimal(value) } };
    } catch (err) {
      throw new CedarValueError(`${name}: ${(err as Error).message}`);
    }
  }
  if (kind === 'long' && !Number.isSafeInteger(value)) throw new CedarValueError(`${name}: ${value} is not a whole number in range`);
  return value;
}

/** Encodes a record of values by their Cedar kinds. */
export function toCedarRecord(
  kinds: Record<string, CedarKind>,
  values: Record<string, PolicyValue>,
  prefix: string,
): Record<string, CedarValueJson> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, toCedarValue(kinds[k], v, `${prefix}.${k}`)]));
}
