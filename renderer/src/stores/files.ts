/** The current identity's stored files: the list (searched, sorted), replication health of visible rows, retrieve, delete. */
import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import type { FileHealth, FileInfo } from '../../../electron/api/contract.ts';
import { api } from '../api/index.ts';
import { useAccounts } from './accounts.ts';

export type SortKey = 'name' | 'size' | 'chunks' | 'storedAt';

export const useFiles = defineStore('files', () => {
  const accounts = useAccounts();
  const files = ref<FileInfo[]>([]);
  const health = ref<Record<string, FileHealth>>({});
  const query = ref('');
  const sort = ref<{ key: SortKey; descending: boolean }>({ key: 'storedAt', descending: true });
  const loadedFor = ref<string | null>(null);
  /** Bumped when churn may have changed replication: the list refetches health of its visible rows. */
  const churn = ref(0);

  async function load() {
    const as = accounts.current;
    const list = await api().listFiles({ as });
    // An identity switch during the call makes this answer stale.
    if (as !== accounts.current) return;
    // Health stays for files still listed (the rows in view don't refetch); a new identity starts afresh.
    if (loadedFor.value !== as) health.value = {};
    files.value = list;
    loadedFor.value = as;
  }

  /** Health of the given (visible) files; `fresh` refetches rows already known (after churn). */
  async function loadHealth(ids: string[], fresh = false) {
    const wanted = (fresh ? ids : ids.filter((id) => !health.value[id])).slice(0, 500);
    if (!wanted.length) return;
    const as = accounts.current;
    const answer = await api().fileHealth({ as, ids: wanted });
    if (as !== accounts.current) return;
    const next = { ...health.value };
    for (const h of answer) next[h.id] = h;
    health.value = next;
  }

  async function remove(id: string) {
    await api().removeFile({ as: accounts.current, id });
    files.value = files.value.filter((f) => f.id !== id);
  }

  const retrieve = (file: FileInfo) => api().retrieveFile({ as: accounts.current, id: file.id, name: file.name });

  function added(file: FileInfo) {
    if (!files.value.some((f) => f.id === file.id)) files.value = [...files.value, file];
  }

  const shown = computed(() => {
    const needle = query.value.trim().toLowerCase();
    const list = needle ? files.value.filter((f) => f.name.toLowerCase().includes(needle)) : [...files.value];
    const { key, descending } = sort.value;
    const value = (f: FileInfo) => (key === 'chunks' ? f.chunks.length : f[key]);
    list.sort((a, b) => {
      const x = value(a);
      const y = value(b);
      const order = typeof x === 'string' ? x.localeCompare(y as string) : x - (y as number);
      return descending ? -order : order;
    });
    return list;
  });

  function sortBy(key: SortKey) {
    sort.value = { key, descending: sort.value.key === key ? !sort.value.descending : key !== 'name' };
  }

  return { files, health, query, sort, shown, loadedFor, churn, load, loadHealth, remove, retrieve, added, sortBy };
});
