#!/usr/bin/env node
// The installed `safevault` command; Node 24 runs the TypeScript CLI directly (type stripping).
import './cli.ts';
