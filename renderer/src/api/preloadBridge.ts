/**
 * The desktop bridge: the preload's `window.safevault` already is the Api; files go by path, since
 * the engine reads them from disk itself, and a retrieve asks the native "Save as…" dialog first.
 */
import type { DesktopBridge } from '../../../electron/api/contract.ts';
import { newOperationId, type ApiClient } from './client.ts';

export function preloadBridge(bridge: DesktopBridge): ApiClient {
  return {
    ...bridge,
    storeFile: async (file, { as, op }, onUploadProgress) => {
      const path = bridge.getPathForFile(file);
      onUploadProgress?.(file.size, file.size);
      return bridge.putFile({ as, path, name: file.name, op });
    },
    retrieveFile: async ({ as, id, name }) => {
      const out = await bridge.chooseSavePath(name);
      if (out === null) return { saved: false };
      await bridge.getFile({ as, id, out, op: newOperationId() });
      return { saved: true };
    },
    dataFolder: {
      choose: () => bridge.chooseFolder(),
      move: (target) => bridge.moveDataFolder(target),
      onProgress: (listener) => bridge.onDataFolderMove(listener),
    },
  };
}
