/**
 * Runs `task` now and every `everyMs` while the document is visible: a hidden window polls nothing,
 * and catches up at once when it is shown again. Returns a stop function.
 */
export function poll(task: () => unknown, everyMs: number): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const run = async () => {
    clearTimeout(timer);
    if (stopped) return;
    if (!document.hidden) {
      try {
        await task();
      } catch {
        // A failed poll (the daemon away) is shown by the connection state; the next one retries.
      }
    }
    if (!stopped) timer = setTimeout(run, everyMs);
  };
  const onVisibility = () => {
    if (!document.hidden) void run();
  };
  document.addEventListener('visibilitychange', onVisibility);
  void run();
  return () => {
    stopped = true;
    clearTimeout(timer);
    document.removeEventListener('visibilitychange', onVisibility);
  };
}
