import { deflateSync, inflateSync, constants } from 'node:zlib';

/**
 * The Token Status List codec (draft-ietf-oauth-status-list), shared by the broker, which
 * publishes the list, and by verifiers, which read it. Pure functions: no I/O, no clock.
 */

/** Bits per status entry allowed by the draft. */
export type StatusBits = 1 | 2 | 4 | 8;

/** The `status_list` object as it travels inside a Status List Token. */
export interface EncodedStatusList {
  bits: StatusBits;
  lst: string;
}

/** A decoded list: the packed bytes, index 0 in the least significant bits of byte 0. */
export interface StatusList {
  bits: StatusBits;
  bytes: Uint8Array;
}

/** Registered status values; other values are application-specific and treated as not valid. */
export const TokenStatus = { VALID: 0, INVALID: 1, SUSPENDED: 2 } as const;

/** The payload of a Status List Token, as the broker signs it with `typ: statuslist+jwt`. */
export interface StatusListClaims {
  sub: string;
  iat: number;
  exp: number;
  ttl: number;
  status_list: EncodedStatusList;
}

// A status list token comes from the network; an attacker-sized zlib bomb must not exhaust
// memory. 16 MiB holds 134 million 1-bit entries, far more than any broker will publish.
const MAX_INFLATED_BYTES = 16 * 1024 * 1024;

const ALLOWED_BITS: readonly number[] = [1, 2, 4, 8];

function assertBits(bits: number): asserts bits is StatusBits {
  if (!ALLOWED_BITS.includes(bits)) throw new TypeError(`status list bits must be 1, 2, 4 or 8, got ${bits}`);
}

/** Packs one status value per index into `bits`-wide entries and compresses them (zlib, level 9). */
export function encodeStatusList(statuses: Uint8Array, bits: StatusBits): EncodedStatusList {
  assertBits(bits);
  const perByte = 8 / bits;
  const bytes = new Uint8Array(Math.ceil(statuses.length / perByte));
  statuses.forEach((value, idx) => {
    if (value >= 1 << bits) throw new RangeError(`status ${value} at index ${idx} does not fit in ${bits} bits`);
    bytes[Math.floor(idx / perByte)]! |= value << ((idx % perByte) * bits);
  });
  // The draft recommends the highest compression level; it also makes our output match its examples.
  const lst = deflateSync(bytes, { level: constants.Z_BEST_COMPRESSION }).toString('base64url');
  return { bits, lst };
}

/** Decompresses a `status_list` object; throws on bad bits, bad base64url/zlib, or an oversized list. */
export function decodeStatusList(encoded: { bits: unknown; lst: unknown }): StatusList {
  const { bits, lst } = encoded;
  if (typeof bits !== 'number') throw new TypeError('status list bits must be a number');
  assertBits(bits);
  if (typeof lst !== 'string' || !/^[A-Za-z0-9_-]+$/.test(lst)) throw new TypeError('status list lst must be base64url');
  const bytes = inflateSync(Buffer.from(lst, 'base64url'), { maxOutputLength: MAX_INFLATED_BYTES });
  return { bits, bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}

/** The number of entries a decoded list can address. */
export function statusListSize(list: StatusList): number {
  return list.bytes.length * (8 / list.bits);
}

/** The status at `idx`; throws RangeError when the list says nothing about that index. */
export function statusAt(list: StatusList, idx: number): number {
  if (!Number.isSafeInteger(idx) || idx < 0 || idx >= statusListSize(list)) {
    throw new RangeError(`index ${idx} is outside the status list`);
  }
  const perByte = 8 / list.bits;
  const byte = list.bytes[Math.floor(idx / perByte)]!;
  return (byte >> ((idx % perByte) * list.bits)) & ((1 << list.bits) - 1);
}

/** The payload of the Status List Token the broker signs and serves at `uri`. */
export function buildStatusListClaims(input: {
  uri: string;
  statuses: Uint8Array;
  bits: StatusBits;
  iat: number;
  exp: number;
  ttl: number;
}): StatusListClaims {
  const { uri, statuses, bits, iat, exp, ttl } = input;
  return { sub: uri, iat, exp, ttl, status_list: encodeStatusList(statuses, bits) };
}
