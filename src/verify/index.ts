// tessera/verify: what a downstream service needs to check broker tokens offline. Imports
// nothing from the rest of the broker so it can ship on its own.
export { createVerifier, type Verifier, type VerifierOptions, type VerifyRequirements } from './verifier.js';
export { VerificationError, type VerificationErrorCode } from './errors.js';
export type { TesseraAccessToken, TesseraTaskDetail, ActorClaim } from './access-token.js';
export { verifyDpopProof, DPOP_ALGORITHMS, type DpopRequest } from './dpop.js';
export {
  requireTesseraToken,
  tesseraToken,
  type TesseraMiddlewareOptions,
} from './middleware.js';
export {
  TokenStatus,
  buildStatusListClaims,
  decodeStatusList,
  encodeStatusList,
  statusAt,
  statusListSize,
  type EncodedStatusList,
  type StatusBits,
  type StatusList,
  type StatusListClaims,
} from './status-list.js';
