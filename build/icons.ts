/**
 * Draws SafeVault's icons from SVG and renders them to PNG with Debian's Chromium (playwright-core):
 * the app icon at each size the installers need (build/icon.png, build/icons/NxN.png) and the tray
 * icons, one per state at 1x and 2x, for light and dark panels and as macOS template images
 * (electron/main/resources/tray).
 * Run: npx node build/icons.ts  (the PNGs are committed; rerun only when the drawings change).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { TRAY_STATES, type TrayState } from '../electron/main/tray.ts';

const root = join(import.meta.dirname, '..');
const APP_ICON_SIZES = [16, 32, 64, 128, 256, 512] as const;
/** Tray icons are 16 px (1x) and 32 px (@2x), the size Windows and most Linux panels draw. */
const TRAY_SIZE = 16;

/** A vault door: a rounded square, a dial and its spokes, on SafeVault's teal. */
const appIcon = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 256 256">
  <defs><linearGradient id="g" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#1fa39a"/><stop offset="1" stop-color="#0d6e68"/></linearGradient></defs>
  <rect x="16" y="16" width="224" height="224" rx="48" fill="url(#g)"/>
  <rect x="40" y="40" width="176" height="176" rx="28" fill="none" stroke="#e8fffb" stroke-width="12"/>
  <circle cx="128" cy="128" r="44" fill="none" stroke="#e8fffb" stroke-width="12"/>
  <g stroke="#e8fffb" stroke-width="12" stroke-linecap="round">
    <line x1="128" y1="64" x2="128" y2="84"/><line x1="128" y1="172" x2="128" y2="192"/>
    <line x1="64" y1="128" x2="84" y2="128"/><line x1="172" y1="128" x2="192" y2="128"/>
  </g>
  <circle cx="128" cy="128" r="12" fill="#e8fffb"/>
</svg>`;

/**
 * macOS's template version: black and alpha only, so the menu bar can tint it (light, dark, highlighted).
 * With no colour the state is in the badge's shape: a dot, a turning arrow, two bars, a "!" in a disc;
 * the door is cut away around the badge so the two never touch.
 */
function trayTemplateIcon(state: TrayState): string {
  const ink = '#000000';
  const badges: Record<TrayState, string> = {
    online: `<circle cx="12" cy="12" r="3.2" fill="${ink}"/>`,
    working: `<path d="M9.2 12 a2.8 2.8 0 1 0 2.8 -2.8" fill="none" stroke="${ink}" stroke-width="1.6" stroke-linecap="round"/><path d="M12 7.3 l1.9 1.9 l-1.9 1.9z" fill="${ink}"/>`,
    paused: `<rect x="9.2" y="8.6" width="2" height="6.6" rx=".5" fill="${ink}"/><rect x="12.8" y="8.6" width="2" height="6.6" rx=".5" fill="${ink}"/>`,
    error: `<mask id="bang"><rect width="16" height="16" fill="#fff"/><rect x="11.3" y="9.4" width="1.4" height="3.2" rx=".5" fill="#000"/><rect x="11.3" y="13.3" width="1.4" height="1.3" rx=".5" fill="#000"/></mask><circle cx="12" cy="12" r="3.9" fill="${ink}" mask="url(#bang)"/>`,
  };
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">
    <mask id="gap"><rect width="16" height="16" fill="#fff"/><circle cx="12" cy="12" r="4.9" fill="#000"/></mask>
    <g mask="url(#gap)">
      <rect x="1" y="1" width="12" height="12" rx="2.5" fill="none" stroke="${ink}" stroke-width="1.6"/>
      <circle cx="7" cy="7" r="2.6" fill="none" stroke="${ink}" stroke-width="1.4"/>
    </g>
    ${badges[state]}
  </svg>`;
}

/** The tray glyph (the vault door, simplified) with a badge for the state. `ink` suits the panel. */
function trayIcon(state: TrayState, ink: string): string {
  const badges: Record<TrayState, string> = {
    online: `<circle cx="12" cy="12" r="3.6" fill="#2fb344" stroke="${ink === '#ffffff' ? '#1d1d1d' : '#ffffff'}" stroke-width="1"/>`,
    working: `<path d="M9 12 a3 3 0 1 0 3 -3" fill="none" stroke="#2f7de1" stroke-width="1.8" stroke-linecap="round"/><path d="M12 7.4 l1.8 1.6 l-1.8 1.6z" fill="#2f7de1"/>`,
    paused: `<rect x="8.6" y="8.6" width="2.2" height="6.4" rx=".6" fill="#e0a100"/><rect x="12.4" y="8.6" width="2.2" height="6.4" rx=".6" fill="#e0a100"/>`,
    error: `<circle cx="12" cy="12" r="3.8" fill="#d63939"/><rect x="11.3" y="9.6" width="1.4" height="3" rx=".5" fill="#fff"/><rect x="11.3" y="13.3" width="1.4" height="1.3" rx=".5" fill="#fff"/>`,
  };
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">
    <rect x="1" y="1" width="12" height="12" rx="2.5" fill="none" stroke="${ink}" stroke-width="1.6"/>
    <circle cx="7" cy="7" r="2.6" fill="none" stroke="${ink}" stroke-width="1.4"/>
    ${badges[state]}
  </svg>`;
}

async function main(): Promise<void> {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const page = await browser.newPage();
  const render = async (svg: string, size: number, path: string) => {
    await page.setViewportSize({ width: size, height: size });
    const sized = svg.replace('<svg ', `<svg width="${size}" height="${size}" `);
    await page.setContent(`<!doctype html><html><body style="margin:0;background:transparent">${sized}</body></html>`);
    writeFileSync(path, await page.screenshot({ omitBackground: true, clip: { x: 0, y: 0, width: size, height: size } }));
  };
  try {
    mkdirSync(join(root, 'build', 'icons'), { recursive: true });
    await render(appIcon, 1024, join(root, 'build', 'icon.png'));
    for (const size of APP_ICON_SIZES) await render(appIcon, size, join(root, 'build', 'icons', `${size}x${size}.png`));
    const trayDir = join(root, 'electron', 'main', 'resources', 'tray');
    mkdirSync(trayDir, { recursive: true });
    for (const state of TRAY_STATES) {
      for (const [panel, ink] of [['light', '#1d1d1d'], ['dark', '#ffffff']] as const) {
        await render(trayIcon(state, ink), TRAY_SIZE, join(trayDir, `tray-${state}-${panel}.png`));
        await render(trayIcon(state, ink), TRAY_SIZE * 2, join(trayDir, `tray-${state}-${panel}@2x.png`));
      }
      await render(trayTemplateIcon(state), TRAY_SIZE, join(trayDir, `tray-${state}Template.png`));
      await render(trayTemplateIcon(state), TRAY_SIZE * 2, join(trayDir, `tray-${state}Template@2x.png`));
    }
  } finally {
    await browser.close();
  }
}

if (import.meta.main) await main();
