// A migration made to fail for real: a trigger aborts every update of
// `transmissions.last_seen`, so `tx_last_seen_backfill_v1` fails with the
// trigger's message — which also carries markup that must stay text.
import { test, expect, banner, screenshot } from './fixtures';

const ERROR = 'last_seen is frozen by the e2e trigger <script>alert(1)</script><img src=x onerror=alert(2)>';
const LINE = `tx_last_seen_backfill_v1 failed: ${ERROR}`;

test.use({
  serverOptions: {
    transmissions: 5_000,
    duty: 0.02,
    sql: `CREATE TRIGGER e2e_fail BEFORE UPDATE OF last_seen ON transmissions
          BEGIN SELECT RAISE(ABORT, '${ERROR}'); END;`,
  },
});

test('shows the failure; × hides it, and a reload keeps it hidden', async ({ page }, info) => {
  await page.goto('/');
  const b = banner(page);
  const line = b.locator('.banner-line', { hasText: 'tx_last_seen_backfill_v1 failed:' });
  await expect(line.locator('.banner-text')).toHaveText(LINE);
  await screenshot(b, 'banner-failed.png', info);

  await page.getByRole('button', { name: 'Dismiss tx_last_seen_backfill_v1 failure' }).click();
  await expect(line).toHaveCount(0);

  await page.reload();
  // Wait until the status has loaded (the page shows the failure) before
  // checking that the banner does not.
  await page.getByRole('link', { name: 'Migrations' }).click();
  await expect(page.locator('tr[data-migration="tx_last_seen_backfill_v1"] .badge')).toHaveText('failed');
  await expect(b).not.toContainText('tx_last_seen_backfill_v1 failed');
});

test('an error text with <script> is shown literally, never run', async ({ page }) => {
  const dialogs: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  await page.goto('/migrations');
  const b = banner(page);
  await expect(b.locator('.banner-text', { hasText: 'tx_last_seen_backfill_v1 failed:' })).toHaveText(LINE);
  const cell = page.locator('tr[data-migration="tx_last_seen_backfill_v1"] td[data-label="Error"]');
  await expect(cell).toHaveText(ERROR);
  await expect(page.locator('body script, body img')).toHaveCount(0);
  expect(dialogs).toEqual([]);
});
