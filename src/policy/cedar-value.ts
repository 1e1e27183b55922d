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

const JS_TYPE: Record<CedarKind, string> = { string: 'string', long: 'number', decimal: 'number', boolean: 'boolean' };
const EXPECTED: Record<CedarKind, string> = { string: 'a string', long: 'a whole number', decimal: 'a number', boolean: 'true or false' };

/**
 * The Cedar encoding of a value of `kind`, or CedarValueError saying why it has none. The JS type is
 * checked here, not left to Cedar: evaluation passes no schema (see evaluate.ts), and Cedar compares
 * values of different types as unequal instead of failing, so a mistyped value could quietly skip a forbid.
 */
export function encodeCedarValue(kind: CedarKind | undefined, value: unknown): CedarValueJson {
  if (kind === undefined) throw new CedarValueError('is not declared');
  if (typeof value !== JS_TYPE[kind]) throw new CedarValueError(`must be ${EXPECTED[kind]}, got ${JSON.stringify(value) ?? String(value)}`);
  if (kind === 'decimal') return { __extn: { fn: 'decimal', arg: toCedarDecimal(value as number) } };
  if (kind === 'long' && !Number.isInteger(value)) throw new CedarValueError(`must be a whole number, got ${String(value)}`);
  if (kind === 'long' && !Number.isSafeInteger(value)) throw new CedarValueError(`${String(value)} is outside the whole-number range Cedar holds exactly`);
  return value as PolicyValue;
}

/** Why `value` cannot be a Cedar value of `kind`, or undefined when it can. */
export function cedarValueProblem(kind: CedarKind, value: unknown): string | undefined {
  try {
    encodeCedarValue(kind, value);
    return undefined;
  } catch (err) {
    if (err instanceof CedarValueError) return err.message;
    throw err;
  }
}

/** Encodes one named value for a Cedar context; the error names it (`params.amount: …`). */
export function toCedarValue(kind: CedarKind | undefined, value: unknown, name: string): CedarValueJson {
  try {
    return encodeCedarValue(kind, value);
  } catch (err) {
    if (err instanceof CedarValueError) throw new CedarValueError(`${name}: ${err.message}`);
    throw err;
  }
}

/** Encodes a record of values by their Cedar kinds; a name without a kind is refused. */
export function toCedarRecord(
  kinds: Record<string, CedarKind>,
  values: Record<string, unknown>,
  prefix: string,
): Record<string, CedarValueJson> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, toCedarValue(Object.hasOwn(kinds, k) ? kinds[k] : undefined, v, `${prefix}.${k}`)]));
}
