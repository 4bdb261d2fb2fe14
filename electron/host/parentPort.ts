/** The host's side of its port: Electron's process.parentPort in a utilityProcess, else Node's IPC channel (fork). */
import type { FromHost, Port } from './protocol.ts';

interface ElectronParentPort {
  postMessage(message: unknown): void;
  on(event: 'message', listener: (event: { data: unknown }) => void): void;
}

export function parentPort(proc: NodeJS.Process = process): Port<FromHost, unknown> {
  const electronPort = (proc as NodeJS.Process & { parentPort?: ElectronParentPort }).parentPort;
  if (electronPort) {
    return { post: (m) => electronPort.postMessage(m), onMessage: (listener) => electronPort.on('message', (e) => listener(e.data)) };
  }
  const send = proc.send?.bind(proc);
  if (!send) throw new Error('the engine host runs as an Electron utilityProcess or a forked Node child, not on its own');
  return { post: (m) => void send(m), onMessage: (listener) => void proc.on('message', listener) };
}
