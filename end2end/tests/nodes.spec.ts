// Nodes, a node, and a packet: the pages a CoreScope operator expects, on a
// seeded file whose nodes `nodes_backfill_v1` builds online at start.
import { test, expect, screenshot, type Server } from './fixtures';
import type { APIRequestContext } from '@playwright/test';

test.use({ serverOptions: { transmissions: 2_000, duty: 1 } });

/** Waits until every migration is done (the nodes are built by then). */
async function migrationsDone(request: APIRequestContext, server: Server) {
  await expect
    .poll(
      async () => {
        const h = await (await request.get(`${server.url}/api/healthz`)).json();
        return (h.async_migrations as { status: string }[]).every((m) => m.status === 'done');
      },
      { timeout: 60_000 },
    )
    .toBe(true);
}

test('the Nodes page lists, searches, filters by role and reverses the order', async ({ page, server, request }, info) => {
  await migrationsDone(request, server);
  await page.goto('/');
  await page.getByRole('link', { name: 'Nodes' }).click();
  await expect(page).toHaveURL(/\/nodes$/);
  await expect(page.getByRole('heading', { name: 'Nodes' })).toBeVisible();
  const rows = page.locator('#nodes-table tbody tr');
  await expect(rows).toHaveCount(50);
  await expect(page.getByText('Most recently seen first.')).toBeVisible();
  await screenshot(page, 'nodes-page.png', info);
  const seen = await rows.locator('td[data-label="Last seen"]').allTextContents();
  expect([...seen].sort().reverse()).toEqual(seen);

  // A second page follows the cursor, and comes back.
  const firstKey = await rows.first().locator('.mono').textContent();
  await page.getByRole('button', { name: 'Next ›' }).click();
  await expect(rows.first().locator('.mono')).not.toHaveText(firstKey ?? '');
  await page.getByRole('button', { name: '‹ Previous' }).click();
  await expect(rows.first().locator('.mono')).toHaveText(firstKey ?? '');

  await page.getByLabel('Role').selectOption('repeater');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(rows.first().locator('td[data-label="Role"]')).toHaveText('repeater');
  const roles = await rows.locator('td[data-label="Role"]').allTextContents();
  expect(roles.length).toBeGreaterThan(0);
  expect(new Set(roles)).toEqual(new Set(['repeater']));

  await page.getByLabel('Role').selectOption('');
  await page.getByLabel('Search').fill('ROOM-');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(rows.first().locator('td[data-label="Role"]')).toHaveText('room server');
  for (const name of await rows.locator('td[data-label="Node"] a').allTextContents()) {
    expect(name.toLowerCase()).toContain('room-');
  }

  await page.getByLabel('Search').fill('no such node anywhere');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page.getByText('No nodes match.', { exact: false })).toBeVisible();
  await expect(page.getByRole('alert')).toHaveCount(0);

  await page.getByLabel('Search').fill('');
  await page.getByRole('button', { name: 'Reverse order' }).click();
  await expect(page.getByText('Longest silent first.')).toBeVisible();
  const oldest = await rows.locator('td[data-label="Last seen"]').allTextContents();
  expect([...oldest].sort()).toEqual(oldest);
});

test('a node page shows what it advertises, who heard it and its packets', async ({ page, server, request }, info) => {
  await migrationsDone(request, server);
  await page.goto('/nodes');
  const link = page.locator('#nodes-table tbody tr').first().locator('td[data-label="Node"] a');
  const name = (await link.textContent()) ?? '';
  await link.click();
  await expect(page).toHaveURL(/\/nodes\/[0-9a-f]{64}$/);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText(name);
  await expect(page.locator('dl.facts dt', { hasText: 'Role' })).toBeVisible();
  await expect(page.locator('#node-observers tbody tr').first()).toBeVisible();
  const snr = await page.locator('#node-observers tbody tr td[data-label="Best SNR"]').allTextContents();
  const values = snr.map(Number);
  expect(values.every((v) => Number.isFinite(v))).toBe(true);
  expect([...values].sort((a, b) => b - a)).toEqual(values);
  await expect(page.locator('#packets-table tbody tr').first()).toBeVisible();
  await screenshot(page, 'node-page.png', info);
  // Its packets link to their pages.
  await page.locator('#packets-table tbody tr').first().locator('td[data-label="Hash"] a').click();
  await expect(page).toHaveURL(/\/packets\/[0-9a-f]{16}$/);
  await expect(page.getByRole('heading', { name: 'ADVERT packet' })).toBeVisible();
  await expect(page.locator('dl.facts dd', { hasText: name })).toBeVisible();
});

test('a packet opens from the Packets list with its fields and every sighting', async ({ page }, info) => {
  await page.goto('/packets');
  const row = page.locator('#packets-table tbody tr').first();
  await expect(row).toBeVisible();
  const type = await row.locator('td[data-label="Type"]').textContent();
  const hash = await row.locator('td[data-label="Hash"]').textContent();
  const count = Number((await row.locator('td[data-label="Observations"]').textContent())?.replace(/,/g, ''));
  await row.locator('td[data-label="Hash"] a').click();
  await expect(page).toHaveURL(new RegExp(`/packets/${hash}$`));
  await expect(page.getByRole('heading', { name: `${type} packet` })).toBeVisible();
  await expect(page.locator('dl.facts dd', { hasText: hash ?? '' })).toBeVisible();
  await expect(page.locator('#packet-sightings tbody tr')).toHaveCount(count);
  // Each sighting names its observer and the path it came over.
  const paths = await page.locator('#packet-sightings td[data-label="Path"]').allTextContents();
  for (const p of paths) expect(p).toMatch(/^(direct \(no hops\)|[0-9A-F]+( → [0-9A-F]+)*)$/);
  await expect(page.locator('#packet-sightings td[data-label="Observer"] .mono').first()).not.toBeEmpty();
  await screenshot(page, 'packet-page.png', info);
  await page.goBack();
  await expect(page.getByRole('heading', { name: 'Packets' })).toBeVisible();

  // An unknown hash says so, as an error, not as an empty page.
  await page.goto('/packets/00000000deadbeef');
  await expect(page.getByRole('alert')).toContainText('no packet with this hash');
});
