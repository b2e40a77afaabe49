// The `server` fixture: seeds a fresh pre-backfill ("legacy") database with
// the real meshscope binary, optionally alters it with SQL (e.g. a trigger
// that makes a migration fail for real), and runs `meshscope serve` on a
// random port. Tests navigate relative to its address (baseURL).
import { test as base, expect, type Page, type TestInfo } from '@playwright/test';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BIN, DIST, SCREENSHOTS, SQLITE3 } from './paths';

export const API_KEY = 'e2e-operator-key';

export type ServerOptions = {
  /** Transmissions to seed (the backfill visits each). */
  transmissions: number;
  /** `--migration-duty`: low, so migrations last long enough to watch. */
  duty: number;
  /** SQL run on the seeded file before serving (sqlite3 CLI). */
  sql?: string;
  /** More `meshscope serve` flags. */
  args?: string[];
};

export type Server = {
  url: string;
  db: string;
  /** Stops the server (SIGTERM) and waits for it to exit. */
  stop: () => Promise<void>;
};

export async function startServer(opts: ServerOptions): Promise<Server> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshscope-e2e-'));
  const db = path.join(dir, 'legacy.db');
  execFileSync(BIN, ['seed', '--db', db, '--transmissions', String(opts.transmissions), '--legacy'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, RUST_LOG: 'warn' },
  });
  if (opts.sql) {
    execFileSync(SQLITE3, [db, opts.sql], { stdio: ['ignore', 'ignore', 'pipe'] });
  }
  const proc: ChildProcess = spawn(
    BIN,
    [
      'serve', '--db', db, '--listen', '127.0.0.1:0', '--dist', DIST,
      '--migration-duty', String(opts.duty),
      ...(opts.args ?? []),
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      // The key by environment, as documented (a flag would show in `ps`).
      env: { ...process.env, MESHSCOPE_API_KEY: API_KEY, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
    },
  );
  let stderr = '';
  proc.stderr!.on('data', (d) => {
    stderr += d;
    if (process.env.E2E_SERVER_LOG) process.stderr.write(d);
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  // The first stdout line is "meshscope listening on http://ADDR".
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`meshscope serve printed no address in 30 s\n${stderr}`)), 30_000);
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`meshscope serve exited with ${code} before listening\n${stderr}`));
    });
  });
  return {
    url,
    db,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const test = base.extend<{ serverOptions: ServerOptions; server: Server }>({
  serverOptions: [{ transmissions: 20_000, duty: 0.02 }, { option: true }],
  server: async ({ serverOptions }, use) => {
    const server = await startServer(serverOptions);
    await use(server);
    await server.stop();
  },
  baseURL: async ({ server }, use) => {
    await use(server.url);
  },
});

export { expect };

/** The banner region (role=status) every page shows. */
export function banner(page: Page) {
  return page.getByRole('status');
}

/**
 * Saves a screenshot in the test's output folder, and for the README in
 * end2end/screenshots/ when E2E_SCREENSHOTS=1 (so ordinary runs leave the
 * committed images alone).
 */
export async function screenshot(
  target: { screenshot: (o: { path: string; animations?: 'disabled' }) => Promise<Buffer> },
  name: string,
  info: TestInfo,
): Promise<void> {
  await target.screenshot({ path: info.outputPath(name), animations: 'disabled' });
  if (process.env.E2E_SCREENSHOTS === '1') {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    fs.copyFileSync(info.outputPath(name), path.join(SCREENSHOTS, name));
  }
}

/** `name: 1,234 / 5,678 (21%) …` → 1234, or null for another shape. */
export function processedOf(text: string): { name: string; processed: number } | null {
  const m = text.match(/^(\S+): ([\d,]+) \/ [\d,]+ \(\d+%\)/);
  return m ? { name: m[1], processed: Number(m[2].replace(/,/g, '')) } : null;
}

/**
 * Waits until some migration's processed count shown in the banner has risen
 * between two readings (counts above zero only, so a pending → running flip
 * does not count), and returns the first running line's text seen.
 */
export async function expectProgressRises(page: Page, timeout = 60_000): Promise<void> {
  const seen = new Map<string, number>();
  await expect
    .poll(
      async () => {
        const texts = await banner(page).locator('.banner-line.busy .banner-text').allTextContents();
        for (const t of texts) {
          const p = processedOf(t);
          if (!p || p.processed === 0) continue;
          const first = seen.get(p.name);
          if (first === undefined) seen.set(p.name, p.processed);
          else if (p.processed > first) return true;
        }
        return false;
      },
      { timeout, intervals: [200], message: 'a migration progress line whose count rises' },
    )
    .toBe(true);
}
