/** Local client identities; the current one is the `as` of every client call. */
import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { ClientInfo } from '../../../electron/api/contract.ts';
import { api } from '../api/index.ts';

const KEY = 'safevault.identity';
/** The identity made for a user who has none yet, so the first drop just works. */
export const FIRST_IDENTITY = 'me';

export const useAccounts = defineStore('accounts', () => {
  const clients = ref<ClientInfo[]>([]);
  const current = ref<string>(localStorage.getItem(KEY) ?? FIRST_IDENTITY);

  async function load() {
    let list = await api().listClients({});
    if (list.length === 0) list = [await api().createClient({ label: FIRST_IDENTITY })];
    clients.value = list;
    if (!list.some((c) => c.label === current.value)) switchTo(list[0]!.label);
  }

  async function create(label: string) {
    const made = await api().createClient({ label });
    clients.value = [...clients.value, made];
    switchTo(made.label);
    return made;
  }

  function switchTo(label: string) {
    current.value = label;
    localStorage.setItem(KEY, label);
  }

  return { clients, current, load, create, switchTo };
});
