import { z } from 'zod';
import { publicJwk } from '../config/jwk.spec.js';

/**
 * A registered signal source: a principal with its own credential, either a hashed API key
 * (`api_key_sha256`, hex) or public keys for signed requests (a JWT with iss = sub = the source id).
 */
export const signalSourceSpec = z
  .strictObject({
    id: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'lowercase letters, digits and . _ - only'),
    description: z.string().optional(),
    api_key_sha256: z.string().regex(/^[0-9a-f]{64}$/, 'the hex SHA-256 of the key, never the key').optional(),
    public_keys: z.array(publicJwk).default([]),
  })
  .superRefine((v, ctx) => {
    if (!v.api_key_sha256 && v.public_keys.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['api_key_sha256'], message: 'a source needs api_key_sha256 or public_keys' });
    }
  });
export type SignalSourceSpec = z.infer<typeof signalSourceSpec>;
