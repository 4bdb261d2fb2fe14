/**
 * The engine host entry: runs the vault engine in its own process, an Electron utilityProcess in the
 * desktop app or a forked Node child in the tests, and serves the API contract to main over its port.
 * Never imports electron.
 */
import { parentPort } from './parentPort.ts';
import { serveEngine } from './serveEngine.ts';

const host = serveEngine(parentPort());
void host.closed.then((code) => process.exit(code));
// A Node parent that is gone leaves no one to serve: close cleanly (Electron kills a utilityProcess with its app).
process.on('disconnect', host.close);
