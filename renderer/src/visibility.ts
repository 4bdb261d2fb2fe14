/** Whether the window is shown: charts stop animating while it is hidden. */
import { onBeforeUnmount, onMounted, ref } from 'vue';

export function useVisible() {
  const visible = ref(!document.hidden);
  const update = () => (visible.value = !document.hidden);
  onMounted(() => document.addEventListener('visibilitychange', update));
  onBeforeUnmount(() => document.removeEventListener('visibilitychange', update));
  return visible;
}
