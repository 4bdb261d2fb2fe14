/** One-line messages for the user: refusals, bad input, finished work. Each fades after a while. */
import { defineStore } from 'pinia';
import { ref } from 'vue';

export interface Notice {
  id: number;
  kind: 'error' | 'info';
  text: string;
}

/** Long enough to read; errors stay longer. */
const SHOWN_MS = { info: 4_000, error: 10_000 };

export const useNotices = defineStore('notices', () => {
  const list = ref<Notice[]>([]);
  let next = 1;
  const dismiss = (id: number) => (list.value = list.value.filter((n) => n.id !== id));
  const push = (kind: Notice['kind'], text: string) => {
    const id = next++;
    list.value = [...list.value.slice(-2), { id, kind, text }];
    setTimeout(() => dismiss(id), SHOWN_MS[kind]);
  };
  return { list, dismiss, error: (text: string) => push('error', text), info: (text: string) => push('info', text) };
});
