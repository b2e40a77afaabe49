// Operator controls on the Migrations page, with the API key asked once per
// tab, and their effect on the banner.
import { test, expect, banner, screenshot, API_KEY } from './fixtures';

const NAME = 'from_pubkey_backfill_v1';

test('pause and resume from the Migrations page change the status shown in the banner', async ({ page }, info) => {
  await page.goto('/migrations');
  const row = page.locator(`tr[data-migration="${NAME}"]`);
  const pause = row.getByRole('button', { name: `Pause ${NAME}` });
  const resume = row.getByRole('button', { name: `Resume ${NAME}` });
  const retry = row.getByRole('button', { name: `Retry ${NAME}` });
  const line = banner(page).locator('.banner-line', { hasText: `${NAME}:` });
  await expect(pause).toBeEnabled();
  await expect(resume).toBeDisabled();
  await expect(retry).toBeDisabled();
  await expect(line).not.toContainText('paused');

  // No key yet: the click asks for one.
  await pause.click();
  await expect(page.locator('.notice')).toHaveText(`Enter the API key to pause ${NAME}.`);
  // A wrong key is rejected, and the page says so.
  await page.getByLabel('Operator API key').fill('not-the-right-key');
  await page.getByRole('button', { name: 'Use key' }).click();
  await expect(page.locator('.notice')).toContainText('The API key was rejected');
  // The right key: the pause asked for goes through.
  await page.getByLabel('Operator API key').fill(API_KEY);
  await page.getByRole('button', { name: 'Use key' }).click();
  await expect(row.locator('.badge')).toHaveText('paused');
  await expect(line).toContainText('· paused');
  await expect(pause).toBeDisabled();
  await expect(resume).toBeEnabled();
  await screenshot(page, 'migrations-page.png', info);

  // The key is kept for the tab: no second prompt after a reload.
  await page.reload();
  await expect(page.getByText('API key set for this tab')).toBeVisible();
  await resume.click();
  await expect(line).not.toContainText('paused');
  // Back to pending: its pre-flight estimate (or its rate, once it runs).
  await expect(line).toContainText(/\/s|\(estimated\)/);
  await expect(row.locator('.badge')).not.toHaveText('paused');
});
