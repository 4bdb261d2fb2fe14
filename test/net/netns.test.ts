/**
 * Vaults on separate hosts: each in its own network namespace with its own address, joined by veth
 * pairs to a bridge (in a namespace of its own, so the machine's network is untouched). They form
 * one network; one host's link goes down (no goodbye, no TCP reset: only failed pings tell), the
 * others carry on without it, and when the link comes back it rejoins.
 * Needs root and iproute2; skipped, saying so, where namespaces are not permitted.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { eventually, tempDir } from '../helpers.ts';
import { NodeProcess } from './nodes.ts';

const HOSTS = 5;
const tag = `sv${process.pid}`;
const switchNs = `${tag}sw`;
const hostNs = (i: number) => `${tag}h${i}`;
const addressOf = (i: number) => `10.213.0.${10 + i}`;

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** Why namespaces can't be used here, or undefined when they can. */
function unavailable(): string | undefined {
  try {
    ip('netns', 'add', `${tag}probe`);
    ip('netns', 'del', `${tag}probe`);
    return undefined;
  } catch (error) {
    const why = (error as { stderr?: Buffer }).stderr?.toString().trim() || (error as Error).message;
    return `network namespaces are not permitted here (needs root and iproute2: ${why.split('\n')[0]})`;
  }
}

function buildHosts(): void {
  after(() => {
    for (const ns of [switchNs, ...Array.from({ length: HOSTS }, (_, i) => hostNs(i))]) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // Not made, or already gone.
      }
    }
  });
  ip('netns', 'add', switchNs);
  ip('-n', switchNs, 'link', 'add', 'br0', 'type', 'bridge');
  ip('-n', switchNs, 'link', 'set', 'br0', 'up');
  for (let i = 0; i < HOSTS; i++) {
    const ns = hostNs(i);
    ip('netns', 'add', ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `port${i}`, 'netns', switchNs);
    ip('-n', ns, 'addr', 'add', `${addressOf(i)}/24`, 'dev', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
    ip('-n', switchNs, 'link', 'set', `port${i}`, 'master', 'br0');
    ip('-n', switchNs, 'link', 'set', `port${i}`, 'up');
  }
}

const setLink = (i: number, state: 'up' | 'down') => ip('-n', switchNs, 'link', 'set', `port${i}`, state);

const reason = unavailable();
test(`${HOSTS} hosts in network namespaces: one network; a host cut off is noticed, and rejoins`, { skip: reason, timeout: 400_000 }, async () => {
  buildHosts();
  const root = tempDir('safevault-netns-');
  const start = (i: number, bootstrap: string[]) =>
    NodeProcess.start(join(root, `h${i}`), { listen: `/ip4/${addressOf(i)}/tcp/4001`, bootstrap, prefix: ['ip', 'netns', 'exec', hostNs(i)] });
  const first = await start(0, []);
  const hosts = [first, ...(await Promise.all(Array.from({ length: HOSTS - 1 }, (_, i) => start(i + 1, [first.address]))))];
  await eventually(() => hosts.every((h) => h.online() === HOSTS), `all ${HOSTS} hosts form one network`, 120_000);

  const cut = HOSTS - 1;
  const others = hosts.filter((_, i) => i !== cut);
  setLink(cut, 'down');
  await eventually(() => others.every((h) => h.online() === HOSTS - 1), 'the others notice the cut-off host (failed pings)', 120_000);
  await eventually(() => hosts[cut]!.online() === 1, 'the cut-off host is alone', 120_000);
  await eventually(() => others.some((h) => h.stderr.some((l) => l.includes(`vault ${hosts[cut]!.id.slice(0, 12)} failed`))), 'the ping failures are logged');

  setLink(cut, 'up');
  await eventually(() => hosts.every((h) => h.online() === HOSTS), 'the host rejoins when its link is back', 120_000);
});

if (reason) test.todo(`network namespace test skipped: ${reason}`);
