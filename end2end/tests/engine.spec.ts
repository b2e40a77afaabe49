// Engine v2 as the operator sees it: a migration held back by the health
// throttle says why, and a pending one shows its pre-flight estimate.
import { test, expect, banner, screenshot } from './fixtures';

const LS = 'tx_last_seen_backfill_v1';
const COUNTS = 'counts_backfill_v1';

test.describe('with a free-space floor above what the disk has', () => {
  // A floor of 1 EiB: the free-space signal is really under it, so the
  // running migration is throttled from its first chunk.
  test.use({ serverOptions: { transmissions: 20_000, duty: 0.02, args: ['--throttle-min-free-mb', '1099511627776'] } });

  test('a throttled migration says why in the banner and on the Migrations page', async ({ page }, info) => {
    await page.goto('/migrations');
    const line = banner(page).locator('.banner-line', { hasText: `${LS}:` });
    await expect(line).toHaveClass(/throttled/);
    await expect(line).toContainText('throttled: only');
    await expect(line).toContainText("free on the database's disk");
    await expect(line).toContainText('(resumes by itself)');
    const row = page.locator(`tr[data-migration="${LS}"]`);
    await expect(row.locator('.badge')).toHaveText('throttled');
    await expect(row.locator('.throttle-reason')).toContainText('floor');
    // Throttled counts as running: pause applies, resume does not.
    await expect(row.getByRole('button', { name: `Pause ${LS}` })).toBeEnabled();
    await expect(row.getByRole('button', { name: `Resume ${LS}` })).toBeDisabled();
    await screenshot(page, 'throttled.png', info);
  });
});

test('a pending migration shows its estimate before it starts', async ({ page }) => {
  await page.goto('/');
  // The counts backfill waits behind the others: pending, with an estimate.
  const line = banner(page).locator('.banner-line', { hasText: `${COUNTS}:` });
  await expect(line).toContainText(/not started · (about \d+ \w+|under 1 s) \(estimated\)/);
  await page.goto('/migrations');
  const row = page.locator(`tr[data-migration="${COUNTS}"]`);
  await expect(row.locator('.badge')).toHaveText('pending');
  await expect(row.locator('td[data-label="ETA"]')).toContainText('(estimated)');
});
