/** Signed client instructions: what a storage_client signs and its manager group verifies. */
import { OP_DEADLINE_MS, QUORUM_TIMEOUT_MS, REQUEST_WINDOW_MS } from './constants.ts';
import { fail } from '../api/errors.ts';
import type { Clock } from './clock.ts';
import { verifySignature, type Identity } from './identity.ts';
import type { SignedRequest } from './messages.ts';
import { NAME_BYTES, sha256, type Name } from './names.ts';

const OPS = ['put', 'delete'] as const;
export type ClientOp = (typeof OPS)[number];
const PAYLOAD_BYTES = 1 + NAME_BYTES + NAME_BYTES + 8 + 16 + 8;

export interface ClientInstruction {
  /** The operation's id: the hash of the signed payload, the same on every retry of it. */
  opId: Buffer;
  op: ClientOp;
  client: Name;
  chunk: Name;
  size: number;
  time: number;
}

export function signRequest(identity: Identity, op: ClientOp, chunk: Name, size: number, clock: Clock): SignedRequest {
  const payload = Buffer.alloc(PAYLOAD_BYTES);
  payload.writeUInt8(OPS.indexOf(op), 0);
  identity.name.copy(payload, 1);
  chunk.copy(payload, 33);
  payload.writeBigUInt64BE(BigInt(size), 65);
  clock.bytes(16).copy(payload, 73);
  payload.writeBigUInt64BE(BigInt(clock.now()), 89);
  return { payload, publicKey: identity.publicKey, signature: identity.sign(payload) };
}

/** Decodes and checks a request: well formed, signed by the client it names, and recent. */
export function verifyRequest(request: SignedRequest, now: number): ClientInstruction {
  const { payload, publicKey, signature } = request;
  if (payload.length !== PAYLOAD_BYTES || payload[0]! >= OPS.length) fail('bad-request', 'malformed client request');
  const client = payload.subarray(1, 33);
  if (!sha256(publicKey).equals(client)) fail('bad-signature', 'request key does not match the client it names');
  if (!verifySignature(publicKey, payload, signature)) fail('bad-signature', 'request signature does not verify');
  const time = Number(payload.readBigUInt64BE(89));
  if (Math.abs(now - time) > REQUEST_WINDOW_MS) fail('bad-request', 'request is too old or from the future');
  return {
    opId: sha256(payload),
    op: OPS[payload[0]!]!,
    client,
    chunk: payload.subarray(33, 65),
    size: Number(payload.readBigUInt64BE(65)),
    time,
  };
}

/**
 * Until when the client keeps trying: every group working on its request downstream gives up by
 * then too. Clamped, since the client's clock may be off by up to the request window.
 */
export const deadlineOf = (instruction: ClientInstruction, now: number): number =>
  Math.min(now + OP_DEADLINE_MS, Math.max(now + QUORUM_TIMEOUT_MS, instruction.time + OP_DEADLINE_MS));

/** The id of the operation a group performs on another's behalf, derived so every member and every retry derive the same. */
export const derivedOp = (purpose: string, ...parts: Buffer[]): Buffer => sha256(Buffer.concat([Buffer.from(purpose), ...parts]));
