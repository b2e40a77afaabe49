// The pages: client-side navigation, live tables, filters, and errors that
// look different from empty results.
import { test, expect } from './fixtures';

test.use({ serverOptions: { transmissions: 2_000, duty: 1 } });

test('navigates between pages without reloading', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'Network overview' })).toBeVisible();
  await expect(page.locator('.card', { hasText: 'Packets' }).locator('.card-value')).toHaveText('2,000');
  await expect(page.locator('table.rows tbody tr')).toHaveCount(15);
  await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));

  await page.getByRole('link', { name: 'Observers' }).click();
  await expect(page).toHaveURL(/\/observers$/);
  await expect(page.getByRole('heading', { name: 'Observers' })).toBeVisible();
  await expect(page.locator('table.rows tbody tr').first()).toBeVisible();
  await page.getByRole('link', { name: 'Packets' }).click();
  await expect(page.getByRole('heading', { name: 'Packets' })).toBeVisible();
  await page.goBack();
  await expect(page.getByRole('heading', { name: 'Observers' })).toBeVisible();
  // Same document all along.
  expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42);
});

test('the home table of latest packets refreshes without a reload', async ({ page, server, request }) => {
  await page.goto('/');
  const firstHash = page.locator('table.rows tbody tr').first().locator('td[data-label="Hash"]');
  await expect(firstHash).not.toBeEmpty();
  const before = await firstHash.textContent();
  // A new packet arrives through the ingest API (an ADVERT-shaped raw packet).
  const raw = '11' + '00' + 'ab'.repeat(32) + '00000000' + 'cd'.repeat(64) + '01' + '4e6577';
  const resp = await request.post(`${server.url}/api/ingest`, {
    headers: { Authorization: 'Bearer e2e-operator-key' },
    data: { observer: 'e2e0', raw },
  });
  expect(resp.ok(), await resp.text()).toBe(true);
  await expect(firstHash).not.toHaveText(before ?? '', { timeout: 30_000 });
});

test('packets can be filtered by type and paged', async ({ page }) => {
  await page.goto('/packets');
  const rows = page.locator('table.rows tbody tr');
  await expect(rows).toHaveCount(50);
  await expect(page.getByText(/^1 – 50 of 2,000$/)).toBeVisible();
  await page.getByRole('button', { name: 'Older ›' }).click();
  await expect(page.getByText(/^51 – 100 of 2,000$/)).toBeVisible();

  await page.getByLabel('Type').selectOption('ADVERT');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page.getByText(/^1 – \d+ of [\d,]+$/)).not.toHaveText(/of 2,000$/);
  const types = await rows.locator('td[data-label="Type"]').allTextContents();
  expect(types.length).toBeGreaterThan(0);
  expect(new Set(types)).toEqual(new Set(['ADVERT']));

  // A bad filter is an error, shown as such; a filter matching nothing is not.
  await page.getByLabel('Hash prefix').fill('zz');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page.getByRole('alert')).toContainText('Could not load packets:');
  await expect(page.getByRole('alert')).toContainText('hash: must be hex');
  await page.getByLabel('Hash prefix').fill('ffffffffffffffffff');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page.getByText('No packets match these filters.')).toBeVisible();
  await expect(page.getByRole('alert')).toHaveCount(0);
});

test('a failed read says "could not load", unlike an empty list', async ({ page }) => {
  await page.route('**/api/observers', (route) =>
    route.fulfill({ status: 500, contentType: 'application/json', body: '{"error":"database is on fire"}' }),
  );
  await page.goto('/observers');
  await expect(page.getByRole('alert')).toHaveText(/^Could not load observers: .*HTTP 500: database is on fire$/);
  await page.unroute('**/api/observers');
  await page.route('**/api/observers', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: '[]' }));
  await page.reload();
  await expect(page.getByText('No observers have reported yet.')).toBeVisible();
  await expect(page.getByRole('alert')).toHaveCount(0);
});
