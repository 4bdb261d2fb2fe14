/** The host's log, filterable by level (on the engine) and text (here, as the user types). */
import { defineStore } from 'pinia';
import { computed, ref, watch } from 'vue';
import type { LogLevel, LogLine } from '../../../electron/api/contract.ts';
import { api } from '../api/index.ts';

const KEPT = 5_000;

export const useLogs = defineStore('logs', () => {
  const lines = ref<LogLine[]>([]);
  const level = ref<LogLevel>('info');
  const text = ref('');

  async function load() {
    const last = lines.value.at(-1)?.seq;
    const fresh = await api().logs({ level: level.value, ...(last === undefined ? { limit: 1_000 } : { since: last }) });
    const news = fresh.filter((l) => last === undefined || l.seq > last);
    if (news.length) lines.value = [...lines.value, ...news].slice(-KEPT);
  }

  // A new level is a new query: start over.
  watch(level, () => {
    lines.value = [];
    void load();
  });

  const shown = computed(() => {
    const needle = text.value.trim().toLowerCase();
    return needle ? lines.value.filter((l) => l.message.toLowerCase().includes(needle)) : lines.value;
  });

  return { lines, level, text, shown, load };
});
