/**
 * Judges who sent a message by its type's sender rule (messages.ts): the claims it makes about the
 * sender and the receiver hold in this vault's view, or the message is refused. A vault judges every
 * message it receives this way, a batch of decisions record by record.
 */
import { fail } from '../api/errors.ts';
import { NEAR_SLACK, type Groups } from './group.ts';
import { senderRule, type Claim, type GroupRef, type Message, type MessageType, type Persona, type SenderRule } from './messages.ts';
import { toHex, type Name } from './names.ts';
import type { Replicas } from './replica.ts';

type Group = Exclude<GroupRef, { record: unknown }>;

export class SenderJudge {
  readonly #self: Name;
  readonly #groups: Groups;
  readonly #replicas: Replicas;

  constructor(self: Name, groups: Groups, replicas: Replicas) {
    this.#self = self;
    this.#groups = groups;
    this.#replicas = replicas;
  }

  /** Refuses a message whose claims (its type's sender rule) do not hold; returns the rule. */
  judge(from: Name, msg: Message): SenderRule<Message> {
    const rule = senderRule(msg.type) as SenderRule<Message>;
    if (rule.kind === 'claims') this.#enforce(from, msg.type, rule.claims(msg, from));
    return rule;
  }

  /** Refuses one record of a message judged record by record (a batch of decisions) as judge refuses a message. */
  judgeRecord(from: Name, msg: Message & { persona: Persona }, key: Buffer): void {
    const rule = senderRule(msg.type) as SenderRule<Message>;
    if (rule.kind !== 'each-record') return fail('bad-request', `${msg.type} is not judged record by record`);
    this.#enforce(from, msg.type, rule.claims(msg.persona, key));
  }

  /** Whether every claim holds for a message from `from`. */
  holds(from: Name, claims: Claim[]): boolean {
    return claims.every((claim) => this.#refusal(from, claim) === undefined);
  }

  /** Refuses a message of `type` from `from` unless every claim holds. */
  #enforce(from: Name, type: MessageType, claims: Claim[]): void {
    for (const claim of claims) {
      const refusal = this.#refusal(from, claim);
      if (!refusal) continue;
      const receiverSide = 'receiverIn' in claim;
      // The receiver's side is 'unavailable', not final: the sender asks another member.
      fail(receiverSide ? 'unavailable' : 'unauthorized', `${receiverSide ? `this vault does not take ${type}` : `vault ${toHex(from).slice(0, 12)} may not send ${type}`}: ${refusal}`);
    }
  }

  /** Why `claim` does not hold for a message from `from`, or undefined if it does. */
  #refusal(from: Name, claim: Claim): string | undefined {
    if ('senderIs' in claim) return claim.senderIs.equals(from) ? undefined : `it is not ${claim.what}`;
    const [vault, ref] = 'senderIn' in claim ? [from, claim.senderIn] : [this.#self, claim.receiverIn];
    const group = this.#resolve(ref);
    return this.#groups.isWithin(group.of, vault, group.slack, group.exclude) ? undefined : `it is not ${group.what}`;
  }

  /** A record's group is its book's place for the key, with NEAR_SLACK places of slack. */
  #resolve(ref: GroupRef): Group {
    if (!('record' in ref)) return ref;
    const { persona, key } = ref.record;
    const place = this.#replicas.book(persona).placeOf(key) ?? fail('bad-request', `malformed ${persona} key`);
    return { of: place.group, exclude: place.exclude, slack: NEAR_SLACK, what: "in that record's group" };
  }
}
