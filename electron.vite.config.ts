/**
 * One build for the app: electron-vite builds every target here. The desktop host's main (with the
 * engine host entry beside it) and its sandboxed preload, and the window (renderer/). The renderer
 * section is exported on its own too, so `npm run build:renderer` can build the window alone with
 * plain vite (electron-vite has no single-target build).
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'electron-vite';
import vue from '@vitejs/plugin-vue';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export const main = {
  build: {
    outDir: here('./out/main'),
    rollupOptions: {
      // The engine host runs in its own utilityProcess, so it is its own entry: out/main/engineHost.js;
      // self-encryption's worker threads load theirs from out/main/chunkWorker.js.
      input: {
        index: here('./electron/main/index.ts'),
        engineHost: here('./electron/host/engineHost.ts'),
        chunkWorker: here('./electron/engine/client/chunkWorker.ts'),
      },
    },
  },
};

export const preload = {
  build: {
    outDir: here('./out/preload'),
    // A sandboxed preload can require nothing but electron: zod and the contract are bundled in, as CommonJS.
    externalizeDeps: false,
    rollupOptions: {
      input: { index: here('./electron/preload/index.ts') },
      output: { format: 'cjs' as const, entryFileNames: '[name].cjs' },
    },
  },
};

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

export default defineConfig({ main, preload, renderer });
