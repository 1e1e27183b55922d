import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** A key-encryption key: seals signing keys at rest with AES-256-GCM. */
export class Kek {
  readonly #key: Buffer;
  constructor(key: Buffer) {
    if (key.length !== 32) throw new Error('a KEK is 32 bytes');
    this.#key = key;
  }

  /** `v1.<iv>.<tag>.<ciphertext>` (base64url); `aad` binds the ciphertext to its key id. */
  seal(plaintext: string, aad: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(aad));
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v1', iv, cipher.getAuthTag(), ct].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
  }

  open(sealed: string, aad: string): string {
    const [v, iv, tag, ct] = sealed.split('.');
    if (v !== 'v1' || !iv || !tag || !ct) throw new Error('sealed key has an unknown format');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
  }
}

/**
 * The KEK from the environment, or (demo mode only) one generated into `<dataDir>/kek` so the
 * embedded broker keeps its keys across restarts. Returns whether it was generated, to warn.
 */
export async function loadKek(fromEnv: string | undefined, dataDir: string): Promise<{ kek: Kek; source: 'env' | 'file' | 'generated' }> {
  if (fromEnv) return { kek: new Kek(Buffer.from(fromEnv, 'base64url')), source: 'env' };
  const file = path.join(dataDir, 'kek');
  if (existsSync(file)) return { kek: new Kek(Buffer.from((await readFile(file, 'utf8')).trim(), 'base64url')), source: 'file' };
  await mkdir(dataDir, { recursive: true });
  const key = randomBytes(32);
  await writeFile(file, key.toString('base64url'), { mode: 0o600 });
  return { kek: new Kek(key), source: 'generated' };
}
