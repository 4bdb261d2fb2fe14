/**
 * The app's settings as the engine keeps them; the theme is applied to the document at once. Also the
 * data folder's move, where the host can move it (the desktop app).
 */
import { defineStore } from 'pinia';
import { ref, watch } from 'vue';
import type { DataFolderMove, Settings } from '../../../electron/api/contract.ts';
import { api } from '../api/index.ts';
import { errorMessage } from '../api/errors.ts';

export const useSettings = defineStore('settings', () => {
  const settings = ref<Settings | null>(null);

  async function load() {
    settings.value = await api().getSettings({});
  }
  async function save(change: Partial<Settings>) {
    settings.value = await api().setSettings(change);
  }

  /** The move in flight (from its progress, which any window hears), or null. */
  const move = ref<DataFolderMove | null>(null);
  const moveProblem = ref<string | null>(null);
  const canMoveDataFolder = () => api().dataFolder !== undefined;
  const moveProgress = (progress: DataFolderMove) => (move.value = progress.done ? null : progress);

  /** Asks for a folder, then moves the data there; a refusal or failure is kept in `moveProblem`. */
  async function moveDataFolder(): Promise<string | null> {
    const folder = api().dataFolder;
    if (!folder) return null;
    moveProblem.value = null;
    const target = await folder.choose();
    if (target === null) return null;
    // Busy from the click on, before the first progress arrives.
    move.value = { target, copied: 0, total: 0, done: false };
    try {
      return (await folder.move(target)).dataDir;
    } catch (e) {
      moveProblem.value = errorMessage(e);
      return null;
    } finally {
      move.value = null;
    }
  }

  // 'auto' leaves the choice to prefers-color-scheme (the tokens' media query).
  watch(
    () => settings.value?.theme,
    (theme) => {
      if (theme && theme !== 'auto') document.documentElement.dataset.theme = theme;
      else delete document.documentElement.dataset.theme;
    },
  );

  return { settings, load, save, move, moveProblem, canMoveDataFolder, moveProgress, moveDataFolder };
});
