/**
 * The `safevault` CLI: `safevault daemon` runs the engine behind the local HTTP API; every other command
 * is one API call to that daemon. Exit codes: 0 ok, 1 refused or failed, 2 usage error.
 */
import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Api, Method, Params } from '../api/contract.ts';
import type { RecordedEvent } from '../api/events.ts';
import { connect, readDaemonInfo, type DaemonClient } from './client.ts';
import { render } from './format.ts';
import { startServer } from './server.ts';

class UsageError extends Error {}

/** What a command receives: its positional arguments and flag values, already checked against its usage line. */
interface Invocation {
  args: string[];
  flags: Partial<Record<string, string>>;
  /** The values of a flag that may be given more than once (--bootstrap). */
  bootstrap: string[];
  noMdns: boolean;
  json: boolean;
  follow: boolean;
  dataDir: string;
}

interface Command {
  /** Also the spec: lowercase words name the command, UPPERCASE words are arguments, `--x VALUE` flags are required, `[--x ...]` optional. */
  usage: string;
  summary: string;
  run(inv: Invocation): Promise<void>;
}

/** A command that is exactly one API call, printed by format.ts; long file transfers show progress on a terminal. */
const call = <M extends Method>(usage: string, summary: string, method: M, params: (inv: Invocation) => Params<M>): Command => ({
  usage,
  summary,
  async run(inv) {
    const request = params(inv); // first, so bad flag values are usage errors even with no daemon
    const api = await connect(inv.dataDir);
    const client = (request as { as?: string }).as;
    const stopProgress = client && PROGRESS_METHODS.has(method) && process.stderr.isTTY && !inv.json ? await showProgress(api, client) : undefined;
    try {
      const result = await (api as Api)[method](request);
      stopProgress?.();
      print(render(method, result, inv.json));
    } finally {
      stopProgress?.();
    }
  },
});

const PROGRESS_METHODS = new Set<Method>(['putFile', 'getFile']);

/** Draws one self-overwriting stderr line from the client's file.progress events; returns a stop that ends the line. */
async function showProgress(api: DaemonClient, client: string): Promise<() => void> {
  let drawn = false;
  const unsubscribe = await api.followEvents((event) => {
    if (event.type !== 'file.progress' || event.client !== client) return;
    const percent = event.total ? Math.floor((100 * event.done) / event.total) : 100;
    process.stderr.write(`\r${event.file}: ${percent}% (${event.done} of ${event.total} bytes)`);
    drawn = true;
  });
  return () => {
    unsubscribe();
    if (drawn) process.stderr.write('\n');
    drawn = false;
  };
}

const commands: Command[] = [
  { usage: 'daemon [--vaults N] [--port P] [--ui DIR] [--max-upload BYTES]', summary: 'run the vault engine, its local API and the window until Ctrl-C', run: daemon },
  call('put FILE --as CLIENT', 'store a file', 'putFile', ({ args: [file], flags }) => ({ as: flags.as!, path: resolve(file!) })),
  call('get ID --as CLIENT --out PATH', 'fetch a stored file into PATH', 'getFile', ({ args: [id], flags }) => ({
    as: flags.as!,
    id: id!,
    out: resolve(flags.out!),
  })),
  call('rm ID --as CLIENT', 'remove a stored file', 'removeFile', ({ args: [id], flags }) => ({ as: flags.as!, id: id! })),
  call('files --as CLIENT', "list a client's files", 'listFiles', ({ flags }) => ({ as: flags.as! })),
  call('chunk put FILE --as CLIENT', 'store FILE as a single chunk', 'putChunk', ({ args: [file], flags }) => ({
    as: flags.as!,
    path: resolve(file!),
  })),
  call('chunk rm NAME --as CLIENT', 'delete a chunk (owners only)', 'removeChunk', ({ args: [name], flags }) => ({ as: flags.as!, name: name! })),
  call('chunk info NAME [--as CLIENT]', "a chunk's subscribers, holders (and CLIENT's refcount)", 'chunkInfo', ({ args: [name], flags }) => ({
    name: name!,
    as: flags.as,
  })),
  call('vaults', 'list the vaults', 'listVaults', () => ({})),
  call('vault add [--donate BYTES]', 'start a new vault', 'addVault', ({ flags }) => ({ donated: integer('--donate', flags.donate) })),
  call('vault stop ID', 'take a vault offline gracefully', 'stopVault', ({ args: [id] }) => ({ id: id! })),
  call('vault start ID', 'bring a vault back online', 'startVault', ({ args: [id] }) => ({ id: id! })),
  call('vault kill ID', 'take a vault offline abruptly', 'killVault', ({ args: [id] }) => ({ id: id! })),
  call('status', 'what the daemon is running', 'status', () => ({})),
  call('clients', 'list the local client identities', 'listClients', () => ({})),
  call('client add LABEL', 'create a client identity', 'createClient', ({ args: [label] }) => ({ label: label! })),
  call('myvault', 'your own vault: space, records, uptime', 'myVault', () => ({})),
  call('join [--bootstrap MULTIADDR] [--listen MULTIADDR] [--no-mdns]', 'run your one vault on a real network instead of a local one (restarts the network); --bootstrap may be repeated', 'setSettings', ({ bootstrap, flags, noMdns }) => ({
    mode: 'network',
    bootstrap,
    mdns: !noMdns,
    ...(flags.listen !== undefined && { listen: flags.listen }),
  })),
  call('local', 'go back to a local network of vaults (restarts the network)', 'setSettings', () => ({ mode: 'local' })),
  call('peers', "on a joined network: your vault's addresses and the vaults it is connected to", 'peers', () => ({})),
  call('pause', 'take your own vault offline (with a goodbye)', 'setPaused', () => ({ paused: true })),
  call('resume', 'bring your own vault back', 'setPaused', () => ({ paused: false })),
  call('logs [--level LEVEL]', "the daemon's log (LEVEL: debug, info, warn, error)", 'logs', ({ flags }) => ({
    level: flags.level as Params<'logs'>['level'],
  })),
  { usage: 'events [--follow]', summary: 'past events as JSON lines; --follow keeps streaming new ones', run: events },
  {
    usage: 'node --listen MULTIADDR [--bootstrap MULTIADDR] [--donate BYTES] [--no-mdns]',
    summary: 'run one vault on a real network (libp2p) until SIGTERM; --bootstrap may be repeated',
    run: node,
  },
  { usage: 'help', summary: 'show this help', run: async () => print(usage()) },
];

const options = {
  'data-dir': { type: 'string' },
  as: { type: 'string' },
  out: { type: 'string' },
  vaults: { type: 'string' },
  port: { type: 'string' },
  donate: { type: 'string' },
  ui: { type: 'string' },
  'max-upload': { type: 'string' },
  level: { type: 'string' },
  listen: { type: 'string' },
  bootstrap: { type: 'string', multiple: true },
  'no-mdns': { type: 'boolean' },
  follow: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;
/** Flags every command takes. */
const GLOBAL_FLAGS = new Set(['data-dir', 'json', 'help']);

function usage(): string {
  const width = Math.max(...commands.map((c) => c.usage.length));
  return [
    'usage: safevault <command> [--data-dir DIR] [--json]',
    '',
    ...commands.map((c) => `  ${c.usage.padEnd(width)}  ${c.summary}`),
    '',
    'DIR defaults to $SAFEVAULT_DATA_DIR, else ~/.safevault. --json prints the raw result on one line.',
  ].join('\n');
}

/** A command's name words, arguments and flags, read off its usage line. */
function spec(usage: string) {
  const words = usage.split(' ');
  const spec = { name: [] as string[], args: [] as string[], required: [] as string[], optional: [] as string[] };
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const flag = /^(\[?)--([a-z-]+)/.exec(word);
    if (flag) {
      (flag[1] ? spec.optional : spec.required).push(flag[2]!);
      if (!word.endsWith(']') && /^[A-Z]+\]?$/.test(words[i + 1] ?? '')) i++; // skip the flag's VALUE
    } else if (/^[A-Z]+$/.test(word)) spec.args.push(word);
    else spec.name.push(word);
  }
  return spec;
}

const specs = commands.map((command) => ({ command, spec: spec(command.usage) }));

async function main(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    const unknown = (err as NodeJS.ErrnoException).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && /'([^']+)'/.exec((err as Error).message);
    throw new UsageError(unknown ? `unknown option: ${unknown[1]}` : (err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) return print(usage());

  const matches = specs.filter(({ spec }) => spec.name.every((word, i) => positionals[i] === word));
  const match = matches.sort((a, b) => b.spec.name.length - a.spec.name.length)[0];
  if (!match) {
    const group = specs.map(({ spec }) => spec).filter((s) => s.name.length > 1 && s.name[0] === positionals[0]);
    if (group.length) throw new UsageError(`${positionals[0]} needs one of: ${group.map((s) => s.name[1]).join(', ')}`);
    throw new UsageError(`unknown command: ${positionals[0]}`);
  }
  const { command, spec: { name, args, required, optional } } = match;
  const given = positionals.slice(name.length);
  const commandName = name.join(' ');
  if (given.length !== args.length) {
    throw new UsageError(`${commandName} takes ${args.length ? args.join(' ') : 'no arguments'}, got ${given.length ? given.join(' ') : 'none'} (usage: safevault ${command.usage})`);
  }
  for (const flag of Object.keys(values)) {
    if (!GLOBAL_FLAGS.has(flag) && !required.includes(flag) && !optional.includes(flag)) throw new UsageError(`${commandName} does not take --${flag}`);
  }
  for (const flag of required) {
    if (values[flag as keyof typeof values] === undefined) throw new UsageError(`${commandName} needs --${flag} (usage: safevault ${command.usage})`);
  }
  const { json = false, follow = false, help: _, 'data-dir': dataDir, bootstrap = [], 'no-mdns': noMdns = false, ...flags } = values;
  await command.run({
    args: given,
    flags,
    bootstrap,
    noMdns,
    json,
    follow,
    // Absolute, so messages and daemon.json lookups don't depend on the caller's cwd.
    dataDir: resolve(dataDir ?? process.env.SAFEVAULT_DATA_DIR ?? resolve(homedir(), '.safevault')),
  });
}

function integer(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new UsageError(`${flag} takes a whole number, not ${JSON.stringify(value)}`);
  return n;
}

function print(text: string): void {
  if (text) process.stdout.write(`${text}\n`);
}

/** Resolves on the first Ctrl-C or SIGTERM; a second one then gets Node's default (immediate exit). */
const interrupted = () =>
  new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });

async function daemon(inv: Invocation): Promise<void> {
  const { dataDir, flags } = inv;
  const vaults = integer('--vaults', flags.vaults);
  const port = integer('--port', flags.port);
  const maxUploadBytes = integer('--max-upload', flags['max-upload']);
  const uiDir = flags.ui === undefined ? undefined : resolve(flags.ui);
  const releaseLock = await lockDataDir(dataDir);
  try {
    // Listening from the start, so a signal during startup still ends in an orderly close rather than a kill.
    const stopRequested = interrupted();
    // Loaded here so that client commands don't pay for opening the engine's modules.
    const { openEngine } = await import('../engine/engine.ts');
    const engine = await openEngine({ dataDir, vaults });
    let server;
    try {
      server = await startServer(engine, { dataDir, port, uiDir, maxUploadBytes });
    } catch (err) {
      await engine.close();
      throw err;
    }
    print(`safevault daemon ready at ${server.url}`);
    // The token rides in the fragment, which browsers never send to a server; the page moves it to sessionStorage.
    print(`open ${server.url}/#token=${server.token}`);
    await stopRequested;
    await server.close();
    await engine.close();
  } finally {
    await releaseLock();
  }
}

/** One vault on a real network: see node.ts. Bad addresses are usage errors, found before anything is opened. */
async function node(inv: Invocation): Promise<void> {
  const { dataDir, flags } = inv;
  const donated = integer('--donate', flags.donate);
  const { checkNodeAddresses, runNode } = await import('./node.ts');
  try {
    checkNodeAddresses(flags.listen!, inv.bootstrap);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const releaseLock = await lockDataDir(dataDir);
  try {
    await runNode({
      dataDir,
      listen: flags.listen!,
      bootstrap: inv.bootstrap,
      mdns: !inv.noMdns,
      ...(donated !== undefined && { donated }),
      stopRequested: interrupted(),
      print,
      log: (level, message) => {
        if (level !== 'debug' || process.env.SAFEVAULT_DEBUG) process.stderr.write(`safevault node: [${level}] ${message}\n`);
      },
    });
  } finally {
    await releaseLock();
  }
}

/**
 * One daemon per data dir: an exclusively created lock file holding our pid. A lock left by a
 * process that no longer exists is stale and taken over.
 */
async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, 'daemon.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => unlink(path).catch(() => undefined);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(await readFile(path, 'utf8').catch(() => ''));
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
        const url = (await readDaemonInfo(dataDir))?.url;
        throw new Error(`a daemon is already running for ${dataDir}${url ? ` at ${url}` : ''} (pid ${pid})`);
      }
      await unlink(path).catch(() => undefined);
    }
  }
  throw new Error(`could not lock ${dataDir}: another daemon is starting there`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, but not ours to signal
  }
}

/** Past events, then (with --follow) live ones: subscribe first, then fetch history, so nothing is missed or repeated. */
async function events(inv: Invocation): Promise<void> {
  const api = await connect(inv.dataDir);
  let last = 0;
  const show = (batch: RecordedEvent[]) => {
    const fresh = batch.filter((event) => event.seq > last);
    if (!fresh.length) return;
    last = fresh.at(-1)!.seq;
    print(render('events', fresh, inv.json));
  };
  let pending: RecordedEvent[] | undefined = [];
  const streamEnded = Promise.withResolvers<void>();
  streamEnded.promise.catch(() => {}); // raced below; don't crash if it ends while history is still printing
  const unsubscribe = inv.follow
    ? await api.followEvents(
        (event) => (pending ? pending.push(event) : show([event])),
        () => streamEnded.reject(new Error('the daemon closed the event stream')),
      )
    : undefined;
  // Page through history: each page starts after the last event shown, until a page brings nothing new.
  for (;;) {
    const before = last;
    show(await api.events({ since: last }));
    if (last === before) break;
  }
  if (!unsubscribe) return;
  show(pending!);
  pending = undefined;
  try {
    await Promise.race([interrupted(), streamEnded.promise]);
  } finally {
    unsubscribe();
  }
}

main(process.argv.slice(2)).then(
  () => {},
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`safevault: ${message.split('\n')[0]}\n`);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  },
);
