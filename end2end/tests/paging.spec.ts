// The read path in the dashboard: packets paged by cursor (stable while
// packets arrive), totals the server only estimates shown as "about", and
// stat cards that say "counting…" rather than a wrong number while the
// maintained counts are computed.
import { test, expect, API_KEY, type Server } from './fixtures';
import type { APIRequestContext } from '@playwright/test';

async function countsReady(request: APIRequestContext, server: Server): Promise<void> {
  await expect
    .poll(async () => (await (await request.get(`${server.url}/api/stats`)).json()).countsReady, {
      timeout: 60_000,
    })
    .toBe(true);
}

const hashes = (page: import('@playwright/test').Page) =>
  page.locator('table.rows tbody tr td[data-label="Hash"]').allTextContents();

test.describe('with the counts ready', () => {
  test.use({ serverOptions: { transmissions: 12_000, duty: 1 } });

  test('pages follow cursors: no repeats or skips while packets arrive, and Newer returns the same page', async ({
    page,
    server,
    request,
  }) => {
    await countsReady(request, server);
    await page.goto('/packets');
    const range = page.locator('#packets-range');
    await expect(range).toHaveText('1 – 50 of 12,000');
    await page.getByRole('button', { name: 'Older ›' }).click();
    await expect(range).toHaveText('51 – 100 of 12,000');
    const second = await hashes(page);
    expect(second).toHaveLength(50);

    // A new packet arrives; with offsets every later page would shift by one.
    const raw = '11' + '00' + 'ef'.repeat(32) + '00000000' + 'cd'.repeat(64) + '01' + '506167';
    const resp = await request.post(`${server.url}/api/ingest`, {
      headers: { Authorization: `Bearer ${API_KEY}` },
      data: { observer: 'e2e1', raw },
    });
    expect(resp.ok(), await resp.text()).toBe(true);

    await page.getByRole('button', { name: 'Older ›' }).click();
    await expect(range).toHaveText(/^101 – 150 of 12,00[01]$/);
    const third = await hashes(page);
    expect(third).toHaveLength(50);
    expect(third.filter((h) => second.includes(h))).toEqual([]);

    await page.getByRole('button', { name: 'Newer' }).click();
    await expect(range).toHaveText(/^51 – 100 of /);
    expect(await hashes(page)).toEqual(second);
    await page.getByRole('button', { name: 'Newer' }).click();
    await expect(range).toHaveText(/^1 – 50 of /);
    await expect(page.getByRole('button', { name: 'Newer' })).toBeDisabled();
  });

  test('a total too large to count cheaply is shown as "about"', async ({ page, server, request }) => {
    await countsReady(request, server);
    const api = await (await request.get(`${server.url}/api/packets?since=946684800&limit=1`)).json();
    expect(api.totalEstimated).toBe(true);
    await page.goto('/packets');
    await page.getByLabel('From').fill('2000-01-01T00:00');
    await page.getByRole('button', { name: 'Apply' }).click();
    await expect(page.locator('#packets-range')).toHaveText(/^1 – 50 of about [\d,]+$/);
    // An exact total never says "about".
    await page.getByRole('button', { name: 'Clear' }).click();
    await expect(page.locator('#packets-range')).toHaveText('1 – 50 of 12,000');
  });
});

test.describe('while the counts are computed', () => {
  // Slow migrations: the counts backfill runs last and has not finished.
  test.use({ serverOptions: { transmissions: 12_000, duty: 0.01 } });

  test('stat cards say "counting…", not a number, for the totals', async ({ page, server, request }) => {
    const stats = await (await request.get(`${server.url}/api/stats`)).json();
    expect(stats.countsReady).toBe(false);
    expect(stats.totalTransmissions).toBeNull();
    await page.goto('/');
    await expect(page.locator('.card', { hasText: 'Packets' }).locator('.card-value')).toHaveText('counting…');
    await expect(page.locator('.card', { hasText: 'Sightings' }).locator('.card-value')).toHaveText('counting…');
    await expect(page.locator('.card', { hasText: 'Observers' }).locator('.card-value')).toHaveText(/^[\d,]+$/);
  });
});
