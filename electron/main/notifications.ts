/**
 * Native notifications for what matters: a store finished or failed, the user's vault went offline,
 * donated space nearly full. Occurrences of one kind close together become one notification, and each
 * kind can be muted in Settings.
 */
import type { Notification as ElectronNotification, NotificationConstructorOptions } from 'electron';
import type { Settings, Status } from '../api/contract.ts';
import type { RecordedEvent } from '../api/events.ts';

export type NotificationKind = keyof Settings['notifications'];

export interface NotifierOptions {
  Notification: { isSupported(): boolean; new (options: NotificationConstructorOptions): Pick<ElectronNotification, 'show' | 'on'> };
  onClick(): void;
  debounceMs?: number;
  schedule?: (run: () => void, ms: number) => void;
}

export interface Notifier {
  notify(kind: NotificationKind, detail: string): void;
  /** Not debounced or mutable: a one-off message from the app itself (hidden to the tray). */
  tell(title: string, body: string): void;
  /** Settings.notifications: which kinds are on. */
  setEnabled(notifications: Settings['notifications']): void;
}

const FULL = 0.9;
/** Warned once above FULL, warned again only after dropping below this. */
const REARM = 0.85;

function summary(kind: NotificationKind, details: string[]): { title: string; body: string } {
  const n = details.length;
  const listed = details.slice(0, 3).join('\n') + (n > 3 ? `\nand ${n - 3} more` : '');
  switch (kind) {
    case 'storeFinished':
      return { title: n === 1 ? 'File stored' : `${n} files stored`, body: listed };
    case 'storeFailed':
      return { title: n === 1 ? 'A file could not be stored' : `${n} files could not be stored`, body: listed };
    case 'vaultOffline':
      return { title: 'Your vault is offline', body: details.at(-1)! };
    case 'spaceNearlyFull':
      return { title: 'Donated space nearly full', body: details.at(-1)! };
  }
}

export function createNotifier(options: NotifierOptions): Notifier {
  const { Notification, onClick, debounceMs = 2000, schedule = (run, ms) => void setTimeout(run, ms).unref() } = options;
  const pending = new Map<NotificationKind, string[]>();
  let enabled: Settings['notifications'] = { storeFinished: true, storeFailed: true, vaultOffline: true, spaceNearlyFull: true };

  const show = (title: string, body: string) => {
    if (!Notification.isSupported()) return;
    const note = new Notification({ title, body, silent: false });
    note.on('click', onClick);
    note.show();
  };

  return {
    notify(kind, detail) {
      if (!enabled[kind]) return;
      const queued = pending.get(kind);
      if (queued) return void queued.push(detail);
      pending.set(kind, [detail]);
      schedule(() => {
        const details = pending.get(kind)!;
        pending.delete(kind);
        const { title, body } = summary(kind, details);
        show(title, body);
      }, debounceMs);
    },
    tell: show,
    setEnabled(notifications) {
      enabled = notifications;
    },
  };
}

/** The notification an engine event calls for, if any; `myVault` is the user's own vault's id. */
export function notificationFor(event: RecordedEvent, myVault: string | undefined): [NotificationKind, string] | undefined {
  switch (event.type) {
    case 'file.stored':
      return ['storeFinished', event.file];
    case 'file.failed':
      return event.direction === 'store' && !event.cancelled ? ['storeFailed', `${event.file}: ${event.message}`] : undefined;
    case 'vault.left':
      return event.vault === myVault && !event.graceful ? ['vaultOffline', 'It left the network unexpectedly; SafeVault will bring it back.'] : undefined;
    default:
      return undefined;
  }
}

/** Warns once when donated space passes 90 % used, and again only after it fell below 85 %. */
export function spaceWatch(notify: (detail: string) => void): (status: Status) => void {
  let warned = false;
  return ({ used, donated }) => {
    const ratio = donated > 0 ? used / donated : 0;
    if (ratio >= FULL && !warned) notify(`${Math.round(ratio * 100)} % of the donated space is used.`);
    if (ratio >= FULL) warned = true;
    else if (ratio < REARM) warned = false;
  };
}
