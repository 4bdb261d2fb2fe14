/** The local network and the user's own vault: status, vaults, and the controls that cause churn. */
import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { MyVault, Status, VaultInfo } from '../../../electron/api/contract.ts';
import { api } from '../api/index.ts';

export const useNetwork = defineStore('network', () => {
  const status = ref<Status | null>(null);
  const vaults = ref<VaultInfo[]>([]);
  const mine = ref<MyVault | null>(null);

  async function load() {
    const [s, v] = await Promise.all([api().status({}), api().listVaults({})]);
    status.value = s;
    vaults.value = v;
  }
  async function loadMine() {
    mine.value = await api().myVault({});
  }

  const act = async (run: () => Promise<VaultInfo>) => {
    const vault = await run();
    await load();
    return vault;
  };

  return {
    status,
    vaults,
    mine,
    load,
    loadMine,
    add: () => act(() => api().addVault({})),
    stop: (id: string) => act(() => api().stopVault({ id })),
    start: (id: string) => act(() => api().startVault({ id })),
    kill: (id: string) => act(() => api().killVault({ id })),
    setPaused: async (paused: boolean) => {
      status.value = await api().setPaused({ paused });
    },
  };
});
