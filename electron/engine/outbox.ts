/**
 * Requests to one vault asked for in the same turn go as one message: a record decision's steps
 * (rec.steps), a repair's store orders (node.storeMany). The receiver answers each part on its own
 * (answered, answeredLater), as it would have answered the part sent alone.
 */
import { SafeVaultError, fromWireError, isSafeVaultError, toWireError } from '../api/errors.ts';
import { parseReply, type MessageType, type Reply } from './messages.ts';
import { toHex, type Name } from './names.ts';

/** One part's answer in a message of several: its reply, or why it was refused. */
export type Answered<R> = { reply: R } | { refused: ReturnType<typeof toWireError> };

/** How an outbox sends: a lone part as the message it stands for, several as one message. */
export interface Sending<T, R> {
  alone(to: Name, part: T): Promise<R>;
  /** The reply's answers, one per part, in order. */
  together(to: Name, parts: T[]): Promise<{ replies: readonly ({ reply: unknown } | { refused: unknown })[] }>;
  /** The message type a part stands for: its answer is checked against that type's reply schema. */
  typeOf(part: T): MessageType;
  /** Parts in one message at most. */
  max: number;
}

/** Coalesces requests per vault: those asked for in one turn go together (see Sending), and each asker gets its own part's answer, or its refusal. */
export class Outbox<T, R> {
  readonly #waiting = new Map<string, { to: Name; parts: T[]; answers: { resolve(reply: R): void; reject(error: unknown): void }[] }>();
  readonly #sending: Sending<T, R>;

  constructor(sending: Sending<T, R>) {
    this.#sending = sending;
  }

  ask(to: Name, part: T): Promise<R> {
    const hex = toHex(to);
    let waiting = this.#waiting.get(hex);
    if (!waiting) {
      this.#waiting.set(hex, (waiting = { to, parts: [], answers: [] }));
      queueMicrotask(() => this.#flush(hex));
    }
    const answer = new Promise<R>((resolve, reject) => waiting.answers.push({ resolve, reject }));
    waiting.parts.push(part);
    if (waiting.parts.length === this.#sending.max) this.#flush(hex);
    return answer;
  }

  #flush(hex: string): void {
    const waiting = this.#waiting.get(hex);
    if (!waiting) return;
    this.#waiting.delete(hex);
    const { to, parts, answers } = waiting;
    const sending = this.#sending;
    if (parts.length === 1) {
      sending.alone(to, parts[0]!).then(answers[0]!.resolve, answers[0]!.reject);
      return;
    }
    sending.together(to, parts).then(
      ({ replies }) =>
        answers.forEach((answer, i) => {
          try {
            answer.resolve(readAnswered(sending.typeOf(parts[i]!), replies[i]) as R);
          } catch (error) {
            answer.reject(error);
          }
        }),
      (error: unknown) => answers.forEach((answer) => answer.reject(error)),
    );
  }
}

/** A part's answer as sent: anything but a refusal (a failing disk) fails the whole message. */
export function answered<R>(part: () => R): Answered<R> {
  try {
    return { reply: part() };
  } catch (error) {
    return refusal(error);
  }
}

/** answered, for a part answered later. */
export function answeredLater<R>(part: () => Promise<R> | R): Promise<Answered<R>> {
  return (async () => part())().then((reply) => ({ reply }), refusal);
}

function refusal(error: unknown): { refused: ReturnType<typeof toWireError> } {
  if (!isSafeVaultError(error)) throw error;
  return { refused: toWireError(error, 'bad-request') };
}

/** A part's answer read as a message of `type` is answered: its reply (schema-checked), or its refusal thrown. */
function readAnswered<T extends MessageType>(type: T, answer: { reply: unknown } | { refused: unknown } | undefined): Reply<T> {
  if (!answer) throw new SafeVaultError('bad-request', 'a reply is missing answers');
  if ('refused' in answer) throw fromWireError(answer.refused, 'a malformed refusal');
  return parseReply(type, answer.reply);
}
