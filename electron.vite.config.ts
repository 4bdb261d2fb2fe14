/**
 * One build for the app: electron-vite builds every target configured here. The desktop host's
 * sections: main (with the engine host entry beside it) and the sandboxed preload; the renderer
 * section comes with the window (renderer/).
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'electron-vite';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export const main = {
  build: {
    outDir: here('./out/main'),
    rollupOptions: {
      // The engine host runs in its own utilityProcess, so it is its own entry: out/main/engineHost.js.
      input: { index: here('./electron/main/index.ts'), engineHost: here('./electron/host/engineHost.ts') },
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

export default defineConfig({ main, preload });
