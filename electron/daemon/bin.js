#!/usr/bin/env node
// The installed `safevault` command. Node 24 runs the TypeScript CLI directly (type stripping);
// older Nodes would fail with an obscure ERR_UNKNOWN_FILE_EXTENSION, so say what is wrong instead.
if (Number(process.versions.node.split('.')[0]) < 24) {
  process.stderr.write(`safevault: needs Node 24 or newer (this is ${process.version})\n`);
  process.exit(1);
}
await import('./cli.ts');
