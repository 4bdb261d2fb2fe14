/** The network and the user's own vault: status, vaults, peers (when joined), and the controls that cause churn. */
import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { MyVault, Peers, Status, VaultInfo } from '../../../electron/api/contract.ts';
import { api } from '../api/index.ts';

export const useNetwork = defineStore('network', () => {
  const status = ref<Status | null>(null);
  const vaults = ref<VaultInfo[]>([]);
  const mine = ref<MyVault | null>(null);
  const peers = ref<Peers | null>(null);

  async function load() {
    const [s, v] = await Promise.all([api().status({}), api().listVaults({})]);
    status.value = s;
    vaults.value = v;
  }
  async function loadMine() {
    mine.value = await api().myVault({});
  }
  async function loadPeers() {
    peers.value = await api().peers({});
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
    peers,
    load,
    loadMine,
    loadPeers,
    add: () => act(() => api().addVault({})),
    stop: (id: string) => act(() => api().stopVault({ id })),
    start: (id: string) => act(() => api().startVault({ id })),
    kill: (id: string) => act(() => api().killVault({ id })),
    setPaused: async (paused: boolean) => {
      status.value = await api().setPaused({ paused });
    },
  };
});
