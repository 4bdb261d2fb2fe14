/**
 * The window end to end: the built renderer served by a real daemon running a real local network of 12
 * vaults, driven in Debian's Chromium. Seed 004's walk-through by mouse, churn from the Network view,
 * 10,000 files in a virtual list, themes, accessibility, screenshots, and a page without the token.
 * Every scenario runs over both bridges: the daemon's WebSocket, and the desktop's preload (the real main
 * IPC, preload and engine host with Electron faked, see desktopHost.ts); the few that mean nothing for
 * one bridge are skipped for it with the reason.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AxeBuilder } from '@axe-core/playwright';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startDesktopHost, type DesktopHost } from './desktopHost.ts';
import { eventually, launchChromium, root, startDaemon, type Daemon } from './harness.ts';
import { seedFiles } from './seed.ts';

const VIEWS = ['files', 'vault', 'network', 'accounts', 'settings', 'logs'] as const;
const FILE_NAME = 'report (final) – ünïcode.bin';
const BULK = 10_000;

interface ChunkRow {
  name: string;
  refcount: string;
  subscribers: string;
  holders: { vault: string; online: boolean }[];
}

const chunkRows = (page: Page): Promise<ChunkRow[]> =>
  page.$$eval('[data-test="chunk-row"]', (rows) =>
    rows.map((row) => ({
      name: row.getAttribute('data-chunk')!,
      refcount: row.querySelector('[data-test="refcount"]')!.textContent!.trim(),
      subscribers: row.querySelector('[data-test="subscribers"]')!.textContent!.trim(),
      holders: [...row.querySelectorAll('[data-test="holder"]')].map((h) => ({ vault: h.getAttribute('data-vault')!, online: h.getAttribute('data-online') === 'true' })),
    })),
  );
const onlineHolders = (row: ChunkRow) => row.holders.filter((h) => h.online).map((h) => h.vault).sort();

type Bridge = 'websocket' | 'preload';
const BRIDGES: Bridge[] = ['websocket', 'preload'];
const title: Record<Bridge, string> = { websocket: 'against a real daemon over its WebSocket', preload: 'as the desktop app, over the preload bridge' };
/** Scenarios that mean nothing for a bridge, and why. */
const notFor = (bridge: Bridge, only: Bridge, why: string) => (bridge === only ? false : `${only} bridge only: ${why}`);

for (const bridge of BRIDGES) describe(`the window in Chromium ${title[bridge]}`, () => {
  const onlyWebsocket = (why: string) => ({ skip: notFor(bridge, 'websocket', why) });
  const onlyPreload = (why: string) => ({ skip: notFor(bridge, 'preload', why) });
  let daemon: Daemon;
  let desktop: DesktopHost;
  const sockets: string[] = [];
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let scratch: string;
  let bytes: Buffer;
  let chunkNames: string[] = [];

  const go = async (view: (typeof VIEWS)[number]) => {
    await page.click(`nav a[href="#/${view}"]`);
    await page.waitForURL(new RegExp(`#/${view}$`));
  };
  const actAs = async (identity: string) => {
    await page.selectOption('[data-test="identity"]', identity);
    await eventually(async () => (await page.inputValue('[data-test="identity"]')) === identity, `acting as ${identity}`);
  };
  const createIdentity = async (identity: string) => {
    await go('accounts');
    await page.fill('[data-test="new-identity"]', identity);
    await page.click('[data-test="create-identity"]');
    await eventually(async () => (await page.inputValue('[data-test="identity"]')) === identity, `${identity} created and current`);
  };
  const row = (name: string) => page.locator(`[data-test="file-row"][data-name="${name}"]`);
  const openDetails = async (name: string) => {
    await row(name).locator('[data-test="details"]').click();
    await page.locator('[data-test="file-detail"]').waitFor();
  };
  /** The drill-down's chunks once `ok` holds for every one of them (the detail refreshes on churn; Refresh asks again). */
  const chunksWhen = (ok: (r: ChunkRow) => boolean, what: string, timeoutMs?: number) =>
    eventually(async () => {
      const rows = await chunkRows(page);
      if (rows.length >= 3 && rows.every(ok)) return rows;
      await page.click('[data-test="file-detail"] >> text=Refresh');
      return null;
    }, what, timeoutMs);

  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'safevault-e2e-files-'));
    bytes = randomBytes(2.5 * 1024 * 1024);
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light', acceptDownloads: true });
    page = await context.newPage();
    page.on('websocket', (ws) => sockets.push(ws.url()));
    if (bridge === 'websocket') daemon = await startDaemon(12);
    else {
      desktop = await startDesktopHost(12);
      await desktop.wire(page, scratch);
      // What a drop hands over: the desktop engine reads it from disk by its path.
      await writeFile(join(scratch, FILE_NAME), bytes);
    }
  });
  after(async () => {
    await browser?.close();
    await daemon?.stop();
    await desktop?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  test('a page without the token shows "not authorised" and asks the daemon for nothing', onlyWebsocket('the desktop window has no token; main refuses other origins (test/desktop/main.test.ts)'), async () => {
    const stranger = await browser.newContext();
    const lonely = await stranger.newPage();
    const asked: string[] = [];
    lonely.on('request', (r) => void (new URL(r.url()).pathname !== '/' && !r.url().includes('/assets/') && asked.push(r.url())));
    lonely.on('websocket', (ws) => asked.push(ws.url()));
    await lonely.goto(`${daemon.url}/`);
    await lonely.getByRole('heading', { name: 'Not authorised' }).waitFor();
    assert.match(await lonely.textContent('main') ?? '', /npm start/);
    assert.deepEqual(asked.filter((u) => !u.endsWith('.ico')), []);
    await stranger.close();
  });

  test('the window opens connected (from the printed URL, the token leaving the address bar; or as the desktop\'s page)', async () => {
    await page.goto(bridge === 'websocket' ? daemon.windowUrl : `${desktop.url}/`);
    await page.locator('[data-test="connection"][data-state="connected"]').waitFor();
    if (bridge === 'websocket') {
      assert.doesNotMatch(page.url(), /token/);
      assert.equal(await page.evaluate(() => sessionStorage.getItem('safevault.token')), daemon.token);
    } else {
      assert.ok(desktop.calls > 0, 'the page called window.safevault');
      assert.deepEqual(sockets, [], 'no WebSocket opened');
    }
    await eventually(async () => /12/.test((await page.textContent('[data-test="vaults-online"]')) ?? ''), 'the status bar counts 12 vaults online');
  });

  test('the window is reachable by keyboard, with a visible focus ring', async () => {
    await page.locator('body').focus();
    const focused = () => page.evaluate(() => {
      const el = document.activeElement as HTMLElement;
      const style = getComputedStyle(el);
      return { text: el.textContent?.trim() ?? '', outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0 };
    });
    const reached: string[] = [];
    for (let i = 0; i < 8 && !reached.includes('Network'); i++) {
      await page.keyboard.press('Tab');
      const { text, outline } = await focused();
      assert.ok(outline, `a visible focus ring on ${text}`);
      reached.push(text);
    }
    assert.ok(reached.includes('Network'), `Tab reaches the navigation: ${reached.join(', ')}`);
    await page.keyboard.press('Enter');
    await page.waitForURL(/#\/network$/);
    await go('files');
  });

  test('a file dropped on the window shows progress, is listed, and its chunks have refcount 1, 1 subscriber, 4 online holders', async () => {
    // Every text the transfer shows, as it changes: the progress in between is too quick to poll for.
    await page.evaluate(() => {
      const seen: string[] = ((window as unknown as { seen: string[] }).seen = []);
      new MutationObserver(() => {
        const text = document.querySelector('[data-test="transfer-detail"]')?.textContent;
        if (text && seen.at(-1) !== text) seen.push(text);
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    await page.evaluate(
      ({ name, b64 }) => {
        const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([data], name, { type: 'application/octet-stream' }));
        const target = document.querySelector('.sidebar')!;
        for (const type of ['dragenter', 'dragover', 'drop']) target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: transfer }));
      },
      { name: FILE_NAME, b64: bytes.toString('base64') },
    );
    await page.locator('[data-test="transfer"]').first().waitFor();
    await eventually(async () => /^Stored/.test((await page.textContent('[data-test="transfer-detail"]')) ?? ''), 'the transfer to finish');
    const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen);
    assert.ok(seen.some((text) => /^\d chunks? stored · /.test(text)), `the engine's progress was shown: ${seen.join(' | ')}`);
    assert.match(seen.at(-1)!, /Stored · 2\.5 MiB in 3 chunks/);
    await row(FILE_NAME).waitFor();
    await openDetails(FILE_NAME);
    const rows = await chunksWhen((r) => r.holders.length > 0, 'chunk rows');
    assert.equal(rows.length, 3);
    chunkNames = rows.map((r) => r.name);
    for (const r of rows) {
      assert.equal(r.refcount, '1');
      assert.equal(r.subscribers, '1');
      assert.equal(onlineHolders(r).length, 4);
    }
  });

  test('a second identity stores the same file: 2 subscribers, no new holders; a third identity\'s delete is refused as non-owner', async () => {
    await openDetails(FILE_NAME);
    const first = await chunksWhen((r) => r.holders.length > 0, 'chunk rows');
    await createIdentity('bob');
    await go('files');
    const path = join(scratch, FILE_NAME);
    await writeFile(path, bytes);
    await page.setInputFiles('[data-test="file-input"]', path);
    await row(FILE_NAME).waitFor();
    await openDetails(FILE_NAME);
    const second = await chunksWhen((r) => r.subscribers === '2', 'two subscribers on every chunk');
    assert.deepEqual(second.map((r) => r.name), first.map((r) => r.name));
    for (const [i, r] of second.entries()) {
      assert.equal(r.refcount, '1');
      assert.deepEqual(r.holders.map((h) => h.vault).sort(), first[i]!.holders.map((h) => h.vault).sort(), 'no new holders');
    }

    await createIdentity('carol');
    await go('network');
    await page.fill('[data-test="chunk-name"]', first[0]!.name);
    await page.locator('[data-test="chunk-summary"]').waitFor();
    await page.click('[data-test="delete-chunk"]');
    await eventually(async () => /non-owner/.test((await page.textContent('[data-test="chunk-problem"]')) ?? ''), 'a visible non-owner refusal');
    await eventually(async () => (await page.locator('[data-test="feed-item"][data-type="delete.refused"]').count()) > 0, 'the refusal in the feed');
  });

  test('the first owner deletes (after confirming); the second still retrieves the file byte-identical', async () => {
    await actAs('me');
    await go('files');
    await row(FILE_NAME).locator('[data-test="delete"]').click();
    await page.click('[data-test="confirm"]');
    await row(FILE_NAME).waitFor({ state: 'detached' });

    await actAs('bob');
    await row(FILE_NAME).waitFor();
    const saved = join(scratch, 'retrieved.bin');
    if (bridge === 'websocket') {
      const [download] = await Promise.all([page.waitForEvent('download'), row(FILE_NAME).locator('[data-test="retrieve"]').click()]);
      assert.equal(download.suggestedFilename(), FILE_NAME);
      await download.saveAs(saved);
    } else {
      // The native "Save as…" answers a temp path; the engine writes the file there itself.
      desktop.dialogAnswers.push({ canceled: false, filePath: saved });
      await row(FILE_NAME).locator('[data-test="retrieve"]').click();
      await eventually(async () => (await readFile(saved).catch(() => Buffer.alloc(0))).length === bytes.length, 'the engine to write the chosen file');
    }
    assert.ok((await readFile(saved)).equals(bytes), 'byte-identical');
  });

  test('stopping and killing holders from the Network view shows in the feed, and the chunks are back at 4 online holders', async () => {
    await openDetails(FILE_NAME);
    const [chunk] = await chunksWhen((r) => r.holders.length > 0, 'chunk rows');
    const [stopped, killed] = onlineHolders(chunk!);
    await go('network');
    await page.locator(`[data-test="vault-row"][data-vault="${stopped}"] [data-test="stop"]`).click();
    await page.locator(`[data-test="vault-row"][data-vault="${stopped}"][data-online="false"]`).waitFor();
    await page.locator(`[data-test="vault-row"][data-vault="${killed}"] [data-test="kill"]`).click();
    await page.locator(`[data-test="vault-row"][data-vault="${killed}"][data-online="false"]`).waitFor();
    for (const vault of [stopped!, killed!]) {
      await eventually(async () => {
        const left = await page.$$eval('[data-test="feed-item"][data-type="vault.left"]', (items) => items.map((i) => i.textContent ?? ''));
        return left.some((text) => text.includes(vault.slice(0, 8)));
      }, `the feed shows ${vault} leaving`);
    }
    await eventually(async () => /10/.test((await page.textContent('[data-test="vaults-online"]')) ?? ''), 'the status bar counts 10 online');
    // The charts move: the next samples show the two vaults gone.
    await page.locator('[role="img"][aria-label="Vaults online over time, now online 10"]').waitFor({ timeout: 30_000 });
    await go('files');
    await openDetails(FILE_NAME);
    const repaired = await chunksWhen((r) => onlineHolders(r).length === 4 && !onlineHolders(r).includes(stopped!) && !onlineHolders(r).includes(killed!), 'every chunk back at 4 online holders', 60_000);
    assert.equal(repaired.length, 3);
  });

  test('dark mode follows the system; the Settings choice overrides it', async () => {
    const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await page.emulateMedia({ colorScheme: 'light' });
    const light = await background();
    await page.emulateMedia({ colorScheme: 'dark' });
    await eventually(async () => (await background()) !== light, 'a dark background');
    const dark = await background();
    assert.equal(dark, 'rgb(17, 20, 25)');
    await go('settings');
    await page.check('[data-test="theme-light"]');
    await eventually(async () => (await background()) === light, 'light forced by the setting');
    await page.check('[data-test="theme-auto"]');
    await eventually(async () => (await background()) === dark, 'back to the system');
    await page.emulateMedia({ colorScheme: 'light' });
  });

  test(`${BULK.toLocaleString('en')} files: the DOM holds only the visible rows, and scrolling to the end shows the last`, onlyWebsocket('the virtual list is the same component over either bridge, and seeding 10,000 files twice would add a minute to npm test'), async () => {
    const started = Date.now();
    await seedFiles(daemon, 'bulk', BULK, scratch);
    console.log(`# seeded ${BULK} files in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    await go('accounts');
    await page.locator('[data-test="identity-row"] >> text=bulk').waitFor();
    await actAs('bulk');
    await go('files');
    await eventually(async () => /10,000 files/.test((await page.textContent('.page-header')) ?? ''), 'the whole list loaded');
    await page.click('[role="columnheader"] >> text=Name');
    const inDom = await page.locator('[data-test="file-row"]').count();
    assert.ok(inDom > 5 && inDom < 60, `${inDom} rows in the DOM`);
    await page.$eval('[data-test="file-scroller"]', (el) => el.scrollTo({ top: el.scrollHeight }));
    const last = `bulk-${String(BULK - 1).padStart(5, '0')}.txt`;
    await row(last).waitFor();
    assert.ok(await row(last).isVisible());
    assert.ok((await page.locator('[data-test="file-row"]').count()) < 60);
  });

  test('each view passes an axe scan (no serious or critical violations) in light and dark, and is saved as a screenshot', async () => {
    await actAs('bob');
    // Enough samples for the charts to draw lines (the engine samples every few seconds).
    const samples = () =>
      bridge === 'websocket'
        ? page.evaluate(() => fetch('/api/timeSeries', { method: 'POST', headers: { authorization: `Bearer ${sessionStorage.getItem('safevault.token')}`, 'content-type': 'application/json' }, body: '{}' }).then((r) => r.json() as Promise<unknown[]>))
        : desktop.bridge.timeSeries({});
    await eventually(async () => (await samples()).length >= 3, 'three samples', 30_000);
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      for (const view of VIEWS) {
        await go(view);
        await page.waitForLoadState('networkidle');
        if (view === 'files') await openDetails(FILE_NAME);
        if (view === 'network') {
          await page.fill('[data-test="chunk-name"]', chunkNames[0]!);
          await page.locator('[data-test="chunk-summary"]').waitFor();
        }
        const { violations } = await new AxeBuilder({ page }).analyze();
        const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
        assert.deepEqual(bad.map((v) => `${view}/${scheme}: ${v.id} ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), []);
        for (const close of await page.locator('.notice .close').all()) await close.click();
        // The screenshots are the browser window's; the desktop one looks the same.
        if (bridge === 'websocket') await page.screenshot({ path: join(root, 'renderer', 'screenshots', `${view}-${scheme}.png`) });
      }
    }
    await page.emulateMedia({ colorScheme: 'light' });
  });

  test('when the daemon goes away the window says so, a drop then stores nothing and says why, and it reconnects when the daemon is back', onlyWebsocket('the desktop restarts its own engine host at once (test/desktop/engineHost.test.ts), so there is no daemon to stop'), async () => {
    await go('files');
    await daemon.stop({ keepData: true });
    // State and text in one condition: the bridge keeps retrying, so between a wait for the state and a
    // separate read of the text the bar may already have flipped to "Connecting…".
    await page.locator('[data-test="connection"][data-state="disconnected"]', { hasText: 'unreachable' }).waitFor();
    await page.setInputFiles('[data-test="file-input"]', { name: 'late.txt', mimeType: 'text/plain', buffer: Buffer.from('too late') });
    await eventually(async () => (await page.locator('[data-test="notice"]', { hasText: 'Not connected to the vault engine' }).count()) > 0, 'the refusal message');
    assert.equal(await page.locator('[data-test="transfer"]', { hasText: 'late.txt' }).count(), 0);
    daemon = await startDaemon(12, daemon.dataDir);
    await page.locator('[data-test="connection"][data-state="connected"]').waitFor({ timeout: 60_000 });
    // Reconnected with no new link: a drop now goes all the way to stored.
    await page.setInputFiles('[data-test="file-input"]', { name: 'back.txt', mimeType: 'text/plain', buffer: Buffer.from('back again') });
    const back = page.locator('[data-test="transfer"]', { hasText: 'back.txt' });
    await eventually(async () => /^Stored/.test((await back.locator('[data-test="transfer-detail"]').textContent()) ?? ''), 'the store after reconnecting');
  });

  /** Every state the status bar's connection takes from now on (each may last only a moment). */
  const watchConnection = () =>
    page.evaluate(() => {
      const seen: string[] = ((window as unknown as { states: string[] }).states = []);
      const bar = document.querySelector('[data-test="connection"]')!;
      new MutationObserver(() => {
        const state = bar.getAttribute('data-state')!;
        if (seen.at(-1) !== state) seen.push(state);
      }).observe(bar, { attributes: true, attributeFilter: ['data-state'] });
    });
  const statesSeen = () => page.evaluate(() => (window as unknown as { states: string[] }).states);
  /** Retrieves the file through "Save as…" and compares it with what was stored. */
  const retrievedIntact = async (name: string) => {
    const saved = join(scratch, `retrieved-${Date.now()}.bin`);
    desktop.dialogAnswers.push({ canceled: false, filePath: saved });
    await row(name).locator('[data-test="retrieve"]').click();
    await eventually(async () => (await readFile(saved).catch(() => Buffer.alloc(0))).length === bytes.length, 'the engine to write the chosen file');
    assert.ok((await readFile(saved)).equals(bytes), 'byte-identical');
  };

  test('when the engine host is killed (SIGKILL) the window shows it, the supervisor restarts it after 1 s, then 2 s, and the data is intact', onlyPreload('the daemon has no engine process of its own to kill; its going away is the scenario above'), async () => {
    await actAs('bob');
    await go('files');
    await row(FILE_NAME).waitFor();
    assert.deepEqual(desktop.logLines.filter((l) => l.includes('engine host exited')), [], 'no engine host died before this scenario');
    for (const delay of [1000, 2000]) {
      const engines = desktop.engines();
      await watchConnection();
      desktop.killEngine();
      // The window hears each change as main pushes it: down, starting, back.
      await eventually(async () => (await statesSeen()).at(-1) === 'connected', 'the window connected again', 60_000);
      assert.deepEqual(await statesSeen(), ['disconnected', 'connecting', 'connected'], 'the window showed the engine down, starting, back');
      assert.equal(desktop.engines(), engines + 1, 'one new engine host');
      assert.equal(desktop.logLines.filter((l) => l.includes('engine host exited (code null); restarting in')).at(-1), `warn engine host exited (code null); restarting in ${delay} ms`);
    }
    await row(FILE_NAME).waitFor();
    await retrievedIntact(FILE_NAME);
  });

  test('Settings moves the data folder: busy while it copies, refused for a non-empty folder, then the engine runs from the new folder with the data intact', onlyPreload('the daemon\'s data folder is its --data-dir; the window only shows it (renderer/test/components.test.ts)'), async () => {
    await go('settings');
    const shown = page.locator('[data-test="data-dir"]');
    const before = (await shown.textContent())!.trim();
    assert.ok(before.endsWith(join('userData', 'data')), before);

    const engines = desktop.engines();
    const full = await mkdtemp(join(tmpdir(), 'safevault-e2e-full-'));
    await writeFile(join(full, 'mine.txt'), 'the user\'s own');
    desktop.dialogAnswers.push({ canceled: false, filePaths: [full] });
    await page.click('[data-test="move-data"]');
    await page.locator('[data-test="data-problem"]', { hasText: 'is not empty: choose an empty folder or a new one' }).waitFor();
    assert.equal(desktop.engines(), engines, 'a refused move never stopped the engine');

    const target = join(scratch, 'moved data');
    desktop.dialogAnswers.push({ canceled: false, filePaths: [target] });
    await watchConnection();
    await page.click('[data-test="move-data"]');
    await page.locator('[data-test="move-data"][disabled]').waitFor();
    await page.locator('[data-test="notice"]', { hasText: `Data folder moved to ${target}` }).waitFor({ timeout: 60_000 });
    await page.locator('[data-test="connection"][data-state="connected"]').waitFor({ timeout: 60_000 });
    await eventually(async () => (await shown.textContent())?.trim() === target, 'Settings shows the new folder');
    assert.ok((await statesSeen()).includes('disconnected'), 'the engine stopped for the move');
    assert.equal(desktop.engines(), engines + 1, 'one engine started, in the new folder');
    assert.equal(JSON.parse(await readFile(join(desktop.userData, 'desktop.json'), 'utf8')).dataDir, target);
    await rm(full, { recursive: true, force: true });

    await go('files');
    await row(FILE_NAME).waitFor();
    await retrievedIntact(FILE_NAME);
  });

  test('the whole run used only its own bridge', async () => {
    if (bridge === 'preload') {
      assert.deepEqual(sockets, [], 'no WebSocket opened');
      assert.ok(desktop.calls > 0, 'every call went through window.safevault');
    } else {
      assert.ok(sockets.length > 0, 'the daemon\'s WebSocket was used');
      assert.equal(await page.evaluate(() => 'safevault' in window), false);
    }
  });
});
