/** The app's settings as the engine keeps them; the theme is applied to the document at once. */
import { defineStore } from 'pinia';
import { ref, watch } from 'vue';
import type { Settings } from '../../../electron/api/contract.ts';
import { api } from '../api/index.ts';

export const useSettings = defineStore('settings', () => {
  const settings = ref<Settings | null>(null);

  async function load() {
    settings.value = await api().getSettings({});
  }
  async function save(change: Partial<Settings>) {
    settings.value = await api().setSettings(change);
  }

  // 'auto' leaves the choice to prefers-color-scheme (the tokens' media query).
  watch(
    () => settings.value?.theme,
    (theme) => {
      if (theme && theme !== 'auto') document.documentElement.dataset.theme = theme;
      else delete document.documentElement.dataset.theme;
    },
  );

  return { settings, load, save };
});
