// A live-ingest source's state reaches an open dashboard over the event
// stream: a real mosquitto broker is stopped under the page, and the
// banner says so without the page polling healthz.
import { test as base, expect } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import { startServer, banner } from './fixtures';

const MOSQUITTO = process.env.MOSQUITTO_PATH ?? '/usr/sbin/mosquitto';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function listening(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

base('a broker stopped under an open page shows in the banner, over the event stream', async ({ page }) => {
  const port = await freePort();
  const broker: ChildProcess = spawn(MOSQUITTO, ['-p', String(port)], { stdio: 'ignore' });
  const server = await startServer({
    transmissions: 200,
    duty: 1,
    args: ['--mqtt', `mqtt://127.0.0.1:${port}`],
  });
  try {
    await listening(port);
    let healthzReads = 0;
    page.on('request', (r) => {
      if (r.url().endsWith('/api/healthz')) healthzReads += 1;
    });
    await page.goto(server.url + '/');
    const source = `127.0.0.1:${port}`;
    // Connected, nothing heard yet.
    await expect(banner(page)).toContainText(`No packets from ${source} yet`);
    const readsBefore = healthzReads;
    broker.kill('SIGTERM');
    await expect(banner(page)).toContainText(`Not connected to ${source}`, { timeout: 10_000 });
    // The change came by the stream: the page did not fall back to polling.
    expect(healthzReads).toBe(readsBefore);
  } finally {
    if (broker.exitCode === null) broker.kill('SIGKILL');
    await server.stop();
  }
});
