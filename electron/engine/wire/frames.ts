/**
 * Messages as frames, both ways: what every transport (the in-process hub, libp2p) does with a
 * message before it leaves and after it arrives, so each carries only opaque frames.
 */
import { SafeVaultError, fromWireError, toWireError } from '../../api/errors.ts';
import { parseMessage, parseReply, type Message, type MessageOf, type MessageType, type Reply } from '../messages.ts';
import type { Name } from '../names.ts';
import { decodeFrame, encodeFrame, type WireValue } from './codec.ts';

export interface Receiver {
  receive(from: Name, message: Message): Promise<unknown>;
}

/** Frames of messages sent lately: one sent to several vaults (a group's step) is encoded once. Messages are never changed once sent. */
const encoded = new WeakMap<object, Buffer>();

export function requestFrame<T extends MessageType>(message: MessageOf<T>): Buffer {
  let frame = encoded.get(message);
  if (!frame) encoded.set(message, (frame = encodeFrame('message', message as unknown as WireValue)));
  return frame;
}

/** A refusal on the wire; what fails on something it was sent (a malformed message) says bad-request. */
export const errorFrame = (error: unknown): Buffer => encodeFrame('error', { ...toWireError(error, 'bad-request') });

/**
 * Decodes and schema-checks a request frame, lets `receiver` handle it, and encodes its answer (or
 * refusal). `onMalformed` hears of a frame that is not a well-formed message (so a transport can
 * drop the peer that sent it); the sender still gets the refusal.
 */
export async function serveFrame(receiver: Receiver, from: Name, frame: Uint8Array, onMalformed?: (error: unknown) => void): Promise<Buffer> {
  let message: Message;
  try {
    const { kind, value } = decodeFrame(frame);
    if (kind !== 'message') throw new SafeVaultError('bad-request', `malformed frame: a ${kind} frame where a message was expected`);
    message = parseMessage(value);
  } catch (error) {
    onMalformed?.(error);
    return errorFrame(error);
  }
  try {
    return encodeFrame('reply', (await receiver.receive(from, message)) as WireValue);
  } catch (error) {
    return errorFrame(error);
  }
}

/** The reply (schema-checked) or the refusal a reply frame carries. */
export function readReply<T extends MessageType>(type: T, frame: Uint8Array, peer: string): Reply<T> {
  const { kind, value } = decodeFrame(frame);
  if (kind === 'error') throw fromWireError(value, `vault ${peer} sent a malformed error`);
  if (kind !== 'reply') throw new SafeVaultError('bad-request', `vault ${peer} answered with a ${kind} frame`);
  return parseReply(type, value);
}
