/** The engine's samples over time, for the charts: fetched incrementally, kept to the engine's window. */
import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { Sample } from '../../../electron/api/contract.ts';
import { api } from '../api/index.ts';

const KEPT = 2_000;

export const useTimeSeries = defineStore('timeSeries', () => {
  const samples = ref<Sample[]>([]);

  async function load() {
    const last = samples.value.at(-1)?.at;
    const fresh = await api().timeSeries(last === undefined ? {} : { since: last + 1 });
    if (fresh.length) samples.value = [...samples.value, ...fresh].slice(-KEPT);
  }

  return { samples, load };
});
