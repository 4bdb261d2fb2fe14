/** Signed client instructions: what a storage_client signs and its manager group verifies. */
import { randomBytes } from 'node:crypto';
import { REQUEST_WINDOW_MS } from './constants.ts';
import { fail } from '../api/errors.ts';
import { verifySignature, type Identity } from './identity.ts';
import type { ClientInstruction, SignedRequest } from './messages.ts';
import { NAME_BYTES, sha256, toHex, type Name } from './names.ts';

const OPS = ['put', 'delete'] as const;
const PAYLOAD_BYTES = 1 + NAME_BYTES + NAME_BYTES + 8 + 16 + 8;

export function signRequest(identity: Identity, op: ClientInstruction['op'], chunk: Name, size: number): SignedRequest {
  const payload = Buffer.alloc(PAYLOAD_BYTES);
  payload.writeUInt8(OPS.indexOf(op), 0);
  identity.name.copy(payload, 1);
  chunk.copy(payload, 33);
  payload.writeBigUInt64BE(BigInt(size), 65);
  randomBytes(16).copy(payload, 73);
  payload.writeBigUInt64BE(BigInt(Date.now()), 89);
  return { payload, publicKey: identity.publicKey, signature: identity.sign(payload) };
}

/** Decodes and checks a request: well formed, signed by the client it names, and recent. */
export function verifyRequest(request: SignedRequest, now = Date.now()): ClientInstruction & { id: string } {
  const { payload, publicKey, signature } = request;
  if (!Buffer.isBuffer(payload) || payload.length !== PAYLOAD_BYTES || payload[0]! >= OPS.length) fail('bad-request', 'malformed client request');
  const client = payload.subarray(1, 33);
  if (!Buffer.isBuffer(publicKey) || !sha256(publicKey).equals(client)) fail('bad-signature', 'request key does not match the client it names');
  if (!Buffer.isBuffer(signature) || !verifySignature(publicKey, payload, signature)) fail('bad-signature', 'request signature does not verify');
  const time = Number(payload.readBigUInt64BE(89));
  if (Math.abs(now - time) > REQUEST_WINDOW_MS) fail('bad-request', 'request is too old or from the future');
  return {
    id: toHex(sha256(payload)),
    op: OPS[payload[0]!]!,
    client,
    chunk: payload.subarray(33, 65),
    size: Number(payload.readBigUInt64BE(65)),
    nonce: payload.subarray(73, 89),
    time,
  };
}
