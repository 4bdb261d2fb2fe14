/** Whether the window can reach the engine: 'unauthorised' is a browser page that came without a token. */
import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import type { ConnectionState } from '../api/client.ts';

export const useConnection = defineStore('connection', () => {
  const state = ref<ConnectionState | 'unauthorised'>('connecting');
  const connected = computed(() => state.value === 'connected');
  const set = (next: ConnectionState | 'unauthorised') => (state.value = next);
  return { state, connected, set };
});
