/**
 * Wires the client to the stores: the connection state, the event feed fanned out to the stores that
 * care, everything reloaded on each (re)connection, and the status polled while the window is visible.
 */
import { watch } from 'vue';
import type { RecordedEvent } from '../../../electron/api/events.ts';
import type { ApiClient } from '../api/client.ts';
import { installApi } from '../api/index.ts';
import { poll } from '../poll.ts';
import { useAccounts } from './accounts.ts';
import { useConnection } from './connection.ts';
import { useEvents } from './events.ts';
import { useFiles } from './files.ts';
import { useNetwork } from './network.ts';
import { useSettings } from './settings.ts';
import { useTimeSeries } from './timeSeries.ts';
import { useTransfers } from './transfers.ts';

const STATUS_EVERY_MS = 2_000;
const SAMPLES_EVERY_MS = 5_000;
const FILES_RELOAD_MS = 400;
/** Events after which replication may have changed. */
const CHURN = new Set<RecordedEvent['type']>(['vault.joined', 'vault.left', 'copy.made', 'holder.pruned', 'holder.bad', 'vault.paused']);

export function startSession(client: ApiClient): () => void {
  installApi(client);
  const connection = useConnection();
  const accounts = useAccounts();
  const files = useFiles();
  const events = useEvents();
  const network = useNetwork();
  const settings = useSettings();
  const samples = useTimeSeries();
  const transfers = useTransfers();

  const reload = async () => {
    await Promise.allSettled([accounts.load().then(files.load), settings.load(), network.load(), events.catchUp(), samples.load()]);
  };

  // Many stores in a row (another window, the CLI) become one list reload.
  let reloadTimer: ReturnType<typeof setTimeout> | undefined;
  const reloadFilesSoon = () => {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(() => void files.load().catch(() => {}), FILES_RELOAD_MS);
  };

  const stops: (() => void)[] = [() => clearTimeout(reloadTimer)];
  stops.push(
    client.onConnection((state) => {
      connection.set(state);
      if (state === 'connected') void reload();
    }),
    client.onEvent((event) => {
      events.ingest(event);
      transfers.onEvent(event);
      if (CHURN.has(event.type)) {
        files.churn++;
        void network.load().catch(() => {});
      }
      if ((event.type === 'file.stored' || event.type === 'file.removed') && event.client === accounts.current) reloadFilesSoon();
    }),
    client.dataFolder?.onProgress((progress) => settings.moveProgress(progress)) ?? (() => {}),
    poll(() => connection.connected && network.load(), STATUS_EVERY_MS),
    poll(() => connection.connected && samples.load(), SAMPLES_EVERY_MS),
  );
  stops.push(watch(() => accounts.current, () => void files.load().catch(() => {})));
  return () => stops.forEach((stop) => stop());
}
