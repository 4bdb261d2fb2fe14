/**
 * The desktop's master key for client secrets, sealed by the OS keychain through Electron safeStorage
 * and kept beside the database it protects (`<dataDir>/master.key.sealed`); main opens it and hands it
 * to the engine host in its init message, never on a command line or in the environment.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SafeStorage } from 'electron';
import { MASTER_KEY_BYTES, masterKeyPath } from '../engine/secretSealer.ts';
import type { Logger } from './logging.ts';

export const sealedKeyPath = (dataDir: string): string => join(dataDir, 'master.key.sealed');

type KeyStorage = Pick<SafeStorage, 'isEncryptionAvailable' | 'encryptString' | 'decryptString'> & {
  getSelectedStorageBackend?: SafeStorage['getSelectedStorageBackend'];
};

/**
 * The master key (base64), or undefined where the OS offers no real keychain: then the engine keeps
 * its key in a 0600 file as the daemon does, which is said in the log. A key the daemon made for this
 * data folder is adopted (sealed, and its clear file removed), so the same secrets stay readable.
 */
export function desktopMasterKey(safeStorage: KeyStorage, dataDir: string, platform: NodeJS.Platform, log: Logger): string | undefined {
  // On Linux without a keyring safeStorage falls back to a fixed password: no better than the 0600 file.
  const weak = platform === 'linux' && safeStorage.getSelectedStorageBackend?.() === 'basic_text';
  if (!safeStorage.isEncryptionAvailable() || weak) {
    log.warn('no OS keychain available: client secrets are sealed under master.key (0600) in the data folder');
    return undefined;
  }
  const sealed = sealedKeyPath(dataDir);
  if (existsSync(sealed)) return safeStorage.decryptString(readFileSync(sealed));
  const clear = masterKeyPath(dataDir);
  const key = existsSync(clear) ? readFileSync(clear) : randomBytes(MASTER_KEY_BYTES);
  if (key.length !== MASTER_KEY_BYTES) throw new Error(`${clear} is not a SafeVault master key`);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(sealed, safeStorage.encryptString(key.toString('base64')), { mode: 0o600 });
  if (existsSync(clear)) {
    rmSync(clear);
    log.info(`the daemon's master key in ${dataDir} is now sealed by the OS keychain`);
  }
  return key.toString('base64');
}
