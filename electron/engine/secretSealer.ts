/**
 * Client secrets never lie in clear in app.sqlite: they are sealed with AES-256-GCM under a master key
 * kept outside the database. The daemon keeps that key in a 0600 file beside the database; the desktop
 * host keeps it sealed by the OS keychain (Electron safeStorage) and hands it to the engine at start.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SecretSealer {
  seal(plain: Buffer): Buffer;
  /** Throws when `sealed` was not sealed under this key or was altered. */
  open(sealed: Buffer): Buffer;
}

export const MASTER_KEY_BYTES = 32;
const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

export function aesGcmSealer(key: Buffer): SecretSealer {
  if (key.length !== MASTER_KEY_BYTES) throw new Error(`a master key is ${MASTER_KEY_BYTES} bytes, not ${key.length}`);
  return {
    seal(plain) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([cipher.update(plain), cipher.final()]);
      return Buffer.concat([Buffer.of(VERSION), iv, cipher.getAuthTag(), body]);
    },
    open(sealed) {
      if (sealed.length < 1 + IV_BYTES + TAG_BYTES || sealed[0] !== VERSION) throw new Error('not a sealed secret');
      const iv = sealed.subarray(1, 1 + IV_BYTES);
      const decipher = createDecipheriv('aes-256-gcm', key, iv);
      decipher.setAuthTag(sealed.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES));
      try {
        return Buffer.concat([decipher.update(sealed.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]);
      } catch {
        throw new Error('a client secret cannot be opened with this master key (was app.sqlite moved without its key?)');
      }
    },
  };
}

export const masterKeyPath = (dataDir: string): string => join(dataDir, 'master.key');

/** The daemon's master key: random bytes in `<dataDir>/master.key`, readable by its owner only, made on first use. */
export function masterKeyFile(dataDir: string): Buffer {
  const path = masterKeyPath(dataDir);
  const key = randomBytes(MASTER_KEY_BYTES);
  try {
    writeFileSync(path, key, { mode: 0o600, flag: 'wx' });
    return key;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const existing = readFileSync(path);
  if (existing.length !== MASTER_KEY_BYTES) throw new Error(`${path} is not a SafeVault master key (${existing.length} bytes)`);
  return existing;
}
