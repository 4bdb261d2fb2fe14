/**
 * One build for the app: electron-vite builds every target configured here (the desktop host adds
 * `main` and `preload`). The renderer section is exported on its own too, so `npm run build:renderer`
 * can build the window alone with plain vite (electron-vite has no single-target build).
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'electron-vite';
import vue from '@vitejs/plugin-vue';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export const renderer = {
  root: here('./renderer'),
  // Relative asset URLs: the same build loads from the daemon's http:// and the desktop's app:// scheme.
  base: './',
  plugins: [vue()],
  build: {
    outDir: here('./out/renderer'),
    emptyOutDir: true,
    rollupOptions: { input: here('./renderer/index.html') },
    // ECharts is one big chunk, loaded with the first chart.
    chunkSizeWarningLimit: 700,
  },
};

export default defineConfig({ renderer });
