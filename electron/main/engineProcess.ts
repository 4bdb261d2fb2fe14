/** Spawns the engine host as an Electron utilityProcess, seen through the supervisor's EngineChild. */
import type { utilityProcess as UtilityProcessModule } from 'electron';
import type { FromHost } from '../host/protocol.ts';
import type { EngineChild } from './engineSupervisor.ts';
import type { Logger } from './logging.ts';

export function utilityEngine(utilityProcess: Pick<typeof UtilityProcessModule, 'fork'>, entry: string, log: Logger): () => EngineChild {
  return () => {
    const child = utilityProcess.fork(entry, [], { serviceName: 'SafeVault engine', stdio: 'pipe' });
    // Whatever the engine prints (a native module's warning, a crash trace) lands in the log file.
    child.stdout?.on('data', (data: Buffer) => log.info(`engine stdout: ${data.toString().trimEnd()}`));
    child.stderr?.on('data', (data: Buffer) => log.warn(`engine stderr: ${data.toString().trimEnd()}`));
    let alive = true;
    child.on('exit', () => void (alive = false));
    return {
      post: (message) => void (alive && child.postMessage(message)),
      onMessage: (listener) => void child.on('message', (message: unknown) => listener(message as FromHost)),
      onExit: (listener) => void child.on('exit', (code: number) => listener(code)),
      kill: () => void child.kill(),
    };
  };
}
