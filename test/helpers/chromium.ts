/**
 * Headless Chromium, to look at an HTML page as a browser renders it. Installed
 * from Debian's packages when missing (about 20 s here); where it cannot be
 * installed, `chromium()` says why and the caller skips.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let found: { path?: string; why?: string } | undefined;

export function chromium(): { path?: string; why?: string } {
  if (found) return found;
  const which = () => spawnSync('sh', ['-c', 'command -v chromium || command -v chromium-browser'], { encoding: 'utf8' }).stdout.trim();
  let path = which();
  if (!path) {
    const install = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'chromium'], {
      encoding: 'utf8', timeout: 240_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    path = which();
    if (!path) {
      found = { why: `chromium is not installed and "apt-get install chromium" failed: ${(install.stderr || install.error?.message || '').trim().split('\n').pop()}` };
      return found;
    }
  }
  found = { path };
  return found;
}

/** The DOM of a page as Chromium builds it (`--dump-dom`). */
export function renderedDom(browser: string, file: string): string {
  const profile = mkdtempSync(join(tmpdir(), 'azs3copy-chromium-'));
  try {
    const out = spawnSync(browser, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, '--dump-dom', `file://${file}`,
    ], { encoding: 'utf8', timeout: 60_000 });
    if (out.status !== 0) throw new Error(`chromium exited ${out.status}: ${out.stderr.trim().split('\n').slice(-3).join(' / ')}`);
    return out.stdout;
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}
