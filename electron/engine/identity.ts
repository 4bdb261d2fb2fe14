/** Ed25519 identities: a vault's or client's name is the SHA-256 of its public key. */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { sha256, type Name } from './names.ts';

export interface Identity {
  readonly name: Name;
  /** Raw 32-byte public key. */
  readonly publicKey: Buffer;
  /** PKCS#8 DER, for storage. */
  readonly secret: Buffer;
  sign(message: Buffer): Buffer;
}

function fromPrivateKey(key: KeyObject): Identity {
  const publicKey = createPublicKey(key).export({ format: 'jwk' }).x!;
  const raw = Buffer.from(publicKey, 'base64url');
  return {
    name: sha256(raw),
    publicKey: raw,
    secret: key.export({ format: 'der', type: 'pkcs8' }),
    sign: (message) => sign(null, message, key),
  };
}

export const createIdentity = (): Identity => fromPrivateKey(generateKeyPairSync('ed25519').privateKey);
export const loadIdentity = (secret: Buffer): Identity =>
  fromPrivateKey(createPrivateKey({ key: secret, format: 'der', type: 'pkcs8' }));

/** True when `signature` is `publicKey`'s signature of `message`; never throws on malformed input. */
export function verifySignature(publicKey: Buffer, message: Buffer, signature: Buffer): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicKey.toString('base64url') }, format: 'jwk' });
    return verify(null, message, key, signature);
  } catch {
    return false;
  }
}
