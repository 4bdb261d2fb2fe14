/**
 * One build for the desktop app: main (with the engine host entry beside it), the sandboxed preload
 * and the renderer (the renderer section comes with the window; see renderer/).
 */
import { resolve } from 'node:path';
import { defineConfig } from 'electron-vite';

export default defineConfig({
  main: {
    build: {
      outDir: 'out/main',
      rollupOptions: {
        // The engine host runs in its own utilityProcess, so it is its own entry: out/main/engineHost.js.
        input: { index: resolve('electron/main/index.ts'), engineHost: resolve('electron/host/engineHost.ts') },
      },
    },
  },
  preload: {
    build: {
      outDir: 'out/preload',
      // A sandboxed preload can require nothing but electron: bundle zod and the contract into it, as CommonJS.
      externalizeDeps: false,
      rollupOptions: {
        input: { index: resolve('electron/preload/index.ts') },
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
});
