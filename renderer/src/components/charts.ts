/**
 * ECharts, registered once with only what the app draws, and the design tokens resolved for it
 * (a canvas can't read CSS variables; the colours follow the theme as it changes).
 */
import { use } from 'echarts/core';
import { CanvasRenderer } from 'echarts/renderers';
import { GaugeChart, LineChart, ScatterChart, PieChart } from 'echarts/charts';
import { GridComponent, LegendComponent, PolarComponent, TooltipComponent } from 'echarts/components';
import { onBeforeUnmount, onMounted, ref, watch } from 'vue';
import { useSettings } from '../stores/settings.ts';

use([CanvasRenderer, GaugeChart, LineChart, ScatterChart, PieChart, GridComponent, LegendComponent, PolarComponent, TooltipComponent]);

export { default as VChart } from 'vue-echarts';

const TOKENS = ['--text', '--text-muted', '--border', '--surface', '--chart-1', '--chart-2', '--chart-3', '--chart-4', '--chart-muted'] as const;
export type Palette = Record<(typeof TOKENS)[number], string>;

/** A token's colour as the page shows it now (light-dark() resolved by the browser). */
function resolve(token: string, probe: HTMLElement): string {
  probe.style.color = `var(${token})`;
  return getComputedStyle(probe).color;
}

export function usePalette() {
  const read = (): Palette => {
    const probe = document.createElement('span');
    document.body.append(probe);
    const palette = Object.fromEntries(TOKENS.map((t) => [t, resolve(t, probe)])) as Palette;
    probe.remove();
    return palette;
  };
  const palette = ref<Palette>(read());
  const settings = useSettings();
  const media = window.matchMedia('(prefers-color-scheme: dark)');
  const refresh = () => (palette.value = read());
  onMounted(() => media.addEventListener('change', refresh));
  onBeforeUnmount(() => media.removeEventListener('change', refresh));
  watch(() => settings.settings?.theme, refresh, { flush: 'post' });
  return palette;
}
