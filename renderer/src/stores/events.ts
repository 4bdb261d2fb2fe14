/** The live churn feed: the engine's events, newest first, kept to a bounded number. */
import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import type { EventType, RecordedEvent } from '../../../electron/api/events.ts';
import { api } from '../api/index.ts';

const KEPT = 1_000;

/** What the feed shows: everything but the per-chunk progress of a file, which the transfers show. */
const isFeedEvent = (e: RecordedEvent) => e.type !== 'file.progress';

export const useEvents = defineStore('events', () => {
  const feed = ref<RecordedEvent[]>([]);
  const hidden = ref<Set<EventType>>(new Set());
  let lastSeq = 0;

  function ingest(event: RecordedEvent) {
    if (event.seq <= lastSeq) return;
    lastSeq = event.seq;
    if (isFeedEvent(event)) feed.value = [event, ...feed.value].slice(0, KEPT);
  }

  /** Fills in what happened while the window was away (first start, or a daemon restart). */
  async function catchUp() {
    const missed = await api().events(lastSeq ? { since: lastSeq } : { limit: 200 });
    for (const event of missed) ingest(event);
  }

  const types = computed(() => [...new Set(feed.value.map((e) => e.type))].sort());
  const shown = computed(() => feed.value.filter((e) => !hidden.value.has(e.type)));

  function toggle(type: EventType) {
    const next = new Set(hidden.value);
    if (!next.delete(type)) next.add(type);
    hidden.value = next;
  }

  return { feed, hidden, types, shown, ingest, catchUp, toggle };
});
