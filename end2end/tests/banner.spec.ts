// The warm-up banner follows a real migration: live progress from the event
// stream (or polling when the stream is unavailable), gone once all is done,
// and back up — fail closed — when the server cannot be reached.
import { test, expect, banner, screenshot, expectProgressRises } from './fixtures';

// A file small enough that every migration finishes well within the wait
// below at this duty (each row now carries CoreScope's decoded_json, which
// the backfills' updates rewrite), large enough to watch progress.
test.use({ serverOptions: { transmissions: 12_000, duty: 0.02 } });

test('shows a progress line whose numbers rise, then hides when the migrations are done', async ({ page }, info) => {
  const healthzReads: string[] = [];
  page.on('request', (r) => {
    if (r.url().endsWith('/api/healthz')) healthzReads.push(r.url());
  });
  await page.goto('/');
  const b = banner(page);
  // The first migration runs; the others wait, showing their estimates.
  const running = b.locator('.banner-line.busy', { hasText: 'tx_last_seen_backfill_v1:' });
  await expect(running).toBeVisible();
  await expect(running.locator('.banner-text')).toHaveText(/^\w+: [\d,]+ \/ [\d,]+ \(\d+%\) · [\d,]+\/s/);
  await expect(running.locator('progress')).toBeVisible();
  await expect(b).toHaveAttribute('aria-live', 'polite');

  await expectProgressRises(page);
  await screenshot(b, 'banner-running.png', info);

  await expect(b).toBeHidden({ timeout: 120_000 });
  await expect(b.locator('.banner-line')).toHaveCount(0);
  // The updates came from the event stream: healthz was read once at start
  // and never polled (polling would have read it every 2 s meanwhile).
  expect(healthzReads.length).toBeLessThanOrEqual(2);
  await page.getByRole('link', { name: 'Migrations' }).click();
  for (const name of ['tx_last_seen_backfill_v1', 'from_pubkey_backfill_v1']) {
    await expect(page.locator(`tr[data-migration="${name}"] .badge`)).toHaveText('done');
  }
});

test('falls back to polling /api/healthz when the event stream is unavailable', async ({ page }) => {
  // An older server or a proxy that refuses the stream.
  await page.route('**/api/events', (route) => route.fulfill({ status: 404, body: '{"error":"no"}' }));
  let healthzReads = 0;
  page.on('request', (r) => {
    if (r.url().endsWith('/api/healthz')) healthzReads += 1;
  });
  await page.goto('/');
  await expect(banner(page).locator('.banner-line.busy').first()).toBeVisible();
  await expectProgressRises(page);
  await expect(banner(page)).toBeHidden({ timeout: 120_000 });
  // Everything it showed came from polling, every 2 s while busy.
  expect(healthzReads).toBeGreaterThan(3);
});

test.describe('a small file', () => {
  test.use({ serverOptions: { transmissions: 1_000, duty: 1 } });

  test('says so when the server cannot be reached (fail closed)', async ({ page, server }) => {
    await page.goto('/');
    // Steady first: the migrations finish quickly at full duty.
    await page.getByRole('link', { name: 'Migrations' }).click();
    await expect(page.locator('tr[data-migration="tx_last_seen_backfill_v1"] .badge')).toHaveText('done');
    await expect(banner(page)).toBeHidden();
    await server.stop();
    await expect(banner(page)).toHaveText("Can't reach the meshscope server — retrying…");
  });
});
