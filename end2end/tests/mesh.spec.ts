// The mesh view: the Map (no tile server: markers on a blank background),
// a packet's hops with names and its route, the Live page, and the region
// selector narrowing every page across a reload.
import { test, expect, screenshot, API_KEY, type Server } from './fixtures';
import type { APIRequestContext } from '@playwright/test';

test.use({ serverOptions: { transmissions: 2_000, duty: 1, args: ['--map-tiles', 'none'] } });

const hex = (bytes: number[]) => bytes.map((b) => b.toString(16).padStart(2, '0')).join('');

function le32(n: number): number[] {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n);
  return [...b];
}

/** A 32-byte key starting with `first`. */
function key(first: number, fill: number): number[] {
  return [first, ...Array(31).fill(fill)];
}

/** A FLOOD packet: header, path length (1-byte hops), hops, payload. */
function flood(payloadType: number, hops: number[], payload: number[]): string {
  return hex([1 | (payloadType << 2), hops.length, ...hops, ...payload]);
}

/** A repeater's ADVERT with a location and a name. */
function advert(k: number[], lat: number, lon: number, name: string): string {
  const sig = Array.from({ length: 64 }, (_, i) => (i * 37) & 0xff);
  const flags = 2 | 0x10 | 0x80;
  return flood(4, [], [
    ...k, ...le32(1_780_000_000), ...sig, flags,
    ...le32(Math.round(lat * 1e6)), ...le32(Math.round(lon * 1e6)),
    ...Buffer.from(name),
  ]);
}

async function ingest(request: APIRequestContext, server: Server, items: object[]) {
  const r = await request.post(`${server.url}/api/ingest`, {
    data: items,
    headers: { Authorization: `Bearer ${API_KEY}` },
  });
  expect(r.status(), await r.text()).toBe(200);
}

/** Waits until the map is drawn; a failure shows the page's own message. */
async function mapReady(page: import('@playwright/test').Page) {
  await expect(page.locator('#map')).toHaveAttribute('data-ready', /true|error/);
  await expect(page.locator('#map-status')).not.toContainText('Could not', { timeout: 1_000 });
  await expect(page.locator('#map')).toHaveAttribute('data-ready', 'true');
}

async function migrationsDone(request: APIRequestContext, server: Server) {
  await expect
    .poll(async () => {
      const h = await (await request.get(`${server.url}/api/healthz`)).json();
      return (h.async_migrations as { status: string }[]).every((m) => m.status === 'done');
    }, { timeout: 90_000 })
    .toBe(true);
}

/** Three repeaters near San Jose and a packet relayed by all three. */
async function route(request: APIRequestContext, server: Server): Promise<string> {
  const relays: [number, number, number, string][] = [
    [0xd1, 37.40, -121.95, 'Santa Clara Peak'],
    [0xd2, 37.33, -121.89, 'Downtown SJ'],
    [0xd3, 37.25, -121.80, 'Coyote Ridge'],
  ];
  await ingest(request, server, relays.map(([b, lat, lon, name]) => ({
    observer: 'e2e0bb', iata: 'SJC', raw: advert(key(b, 0x42), lat, lon, name),
  })));
  // Wait until the node index knows them (the feed thread reads them).
  await expect
    .poll(async () => {
      const r = await (await request.get(`${server.url}/api/resolve-hops?hops=D1,D2,D3`)).json();
      return (r.hops as { node?: { name: string } }[]).map((h) => h.node?.name ?? null);
    }, { timeout: 10_000 })
    .toEqual(['Santa Clara Peak', 'Downtown SJ', 'Coyote Ridge']);
  await ingest(request, server, [{
    observer: 'e2e0cc', iata: 'SJC', raw: flood(5, [0xd1, 0xd2, 0xd3], [0x11, ...Buffer.from('route test')]),
  }]);
  const page = await (await request.get(`${server.url}/api/packets?observer=e2e0cc`)).json();
  expect(page.packets.length).toBe(1);
  return page.packets[0].hash as string;
}

test('the Map shows located nodes, clustered, and a marker opens its node page', async ({ page, server, request }, info) => {
  await migrationsDone(request, server);
  const resp = await page.goto('/map');
  // The map script is loaded by this page only, not by the others.
  expect(await page.locator('script[src="/leaflet/map.js"]').count()).toBe(1);
  await mapReady(page);
  expect(resp?.status()).toBe(200);
  await expect(page.locator('#map-status')).toContainText('nodes with a location');
  // Dense at the network's zoom: clusters, not 400 markers.
  await expect(page.locator('.marker-cluster').first()).toBeVisible();
  await screenshot(page, 'map-page.png', info);

  const nodes = await (await request.get(`${server.url}/api/nodes?located=true&role=repeater&limit=1`)).json();
  const n = nodes.nodes[0];
  await page.goto(`/map?node=${n.publicKey}`);
  await mapReady(page);
  const marker = page.locator(`.node-marker[title="${n.name}"]`);
  await expect(marker).toBeVisible();
  await marker.click();
  await page.locator('.leaflet-popup a.map-node').click();
  await expect(page).toHaveURL(new RegExp(`/nodes/${n.publicKey}`));
  await expect(page.getByRole('heading', { name: n.name })).toBeVisible();

  // Other pages never load it.
  await page.goto('/packets');
  await expect(page.getByRole('heading', { name: 'Packets' })).toBeVisible();
  expect(await page.locator('script[src="/leaflet/map.js"]').count()).toBe(0);
});

test('a packet page names its hops, links them, and draws the route', async ({ page, server, request }, info) => {
  await migrationsDone(request, server);
  const hash = await route(request, server);
  await page.goto(`/packets/${hash}`);
  const path = page.locator('#packet-sightings td[data-label="Path"]');
  await expect(path.getByRole('link', { name: 'Santa Clara Peak' })).toBeVisible();
  await expect(path.getByRole('link', { name: 'Downtown SJ' })).toBeVisible();
  // The route: a line through the three located hops.
  const svg = page.locator('svg#route');
  await expect(svg).toBeVisible();
  await expect(svg.locator('circle')).toHaveCount(3);
  await expect(svg.locator('text')).toContainText(['Santa Clara Peak', 'Downtown SJ', 'Coyote Ridge']);
  await screenshot(page, 'packet-route.png', info);
  // The same route on the map.
  await page.getByRole('link', { name: 'Open this route on the map' }).click();
  await mapReady(page);
  await expect(page.locator('#map-status')).toContainText('route of sighting 1');
  await expect(page.locator('path.map-route')).toHaveCount(1);
  // A hop name opens its node.
  await page.goto(`/packets/${hash}`);
  await path.getByRole('link', { name: 'Coyote Ridge' }).click();
  await expect(page.getByRole('heading', { name: 'Coyote Ridge' })).toBeVisible();
});

test('the Live page shows a packet posted during the test within a second, and pauses', async ({ page, server, request }, info) => {
  await migrationsDone(request, server);
  await page.goto('/live');
  await expect(page.getByText('Waiting for packets')).toBeVisible();
  const rows = page.locator('#live-table tbody tr');
  // The stream is open before the post (the page says it is waiting).
  await page.waitForTimeout(300);
  const posted = Date.now();
  await ingest(request, server, [{ observer: 'e2e0dd', iata: 'OAK', raw: flood(5, [], [0x22, ...Buffer.from('live one')]) }]);
  await expect(rows.first()).toContainText('e2e0dd', { timeout: 1_000 });
  const seenAfter = Date.now() - posted;
  console.log(`live: the posted packet was on the page ${seenAfter} ms after the post began`);
  await screenshot(page, 'live-page.png', info);

  await page.getByRole('button', { name: 'Pause' }).click();
  await ingest(request, server, [{ observer: 'e2e0ee', iata: 'OAK', raw: flood(5, [], [0x22, ...Buffer.from('while paused')]) }]);
  await expect(page.getByText('Paused: 1 new sightings held')).toBeVisible();
  await expect(rows).toHaveCount(1);
  await page.getByRole('button', { name: 'Resume' }).click();
  await expect(rows).toHaveCount(2);
  await expect(rows.first()).toContainText('e2e0ee');
});

test('a region choice narrows every page and survives a reload', async ({ page, server, request }) => {
  await migrationsDone(request, server);
  const all = await (await request.get(`${server.url}/api/observers`)).json();
  const regions = [...new Set((all as { iata: string }[]).map((o) => o.iata))].sort();
  expect(regions.length).toBeGreaterThan(1);
  const region = regions[0];
  await page.goto('/observers');
  await expect(page.locator('#observers-table tbody tr')).toHaveCount(all.length);
  await page.getByLabel('Region').selectOption(region);
  await expect(page).toHaveURL(new RegExp(`iata=${region}`));
  const inRegion = (all as { iata: string }[]).filter((o) => o.iata === region).length;
  await expect(page.locator('#observers-table tbody tr')).toHaveCount(inRegion);
  for (const r of await page.locator('#observers-table td[data-label="Region"]').allTextContents()) {
    expect(r).toBe(region);
  }

  // Other pages keep it: the link carries it, the lists are narrowed.
  await page.getByRole('link', { name: 'Packets' }).click();
  await expect(page).toHaveURL(new RegExp(`/packets\\?iata=${region}`));
  const narrowed = await (await request.get(`${server.url}/api/packets?iata=${region}`)).json();
  const whole = await (await request.get(`${server.url}/api/packets`)).json();
  expect(narrowed.total).toBeLessThan(whole.total);
  await expect(page.locator('table.rows tbody tr').first()).toBeVisible();

  await page.reload();
  await expect(page.getByLabel('Region')).toHaveValue(region);
  await page.getByRole('link', { name: 'Network overview' }).or(page.locator('a .brand')).first().click();
  await expect(page.getByText(`Narrowed to ${region}`)).toBeVisible();
  const stats = await (await request.get(`${server.url}/api/stats?iata=${region}`)).json();
  await expect(page.locator('.card').filter({ hasText: 'Observers' }).locator('.card-value')).toHaveText(String(stats.totalObservers));

  await page.getByRole('link', { name: 'Nodes' }).click();
  await expect(page).toHaveURL(new RegExp(`/nodes\\?iata=${region}`));
  const nodes = await (await request.get(`${server.url}/api/nodes?iata=${region}&limit=50`)).json();
  const names = await page.locator('#nodes-table td[data-label="Node"] a').allTextContents();
  expect(names).toEqual((nodes.nodes as { name: string }[]).map((n) => n.name));

  // Back to every region.
  await page.getByLabel('Region').selectOption('');
  await expect(page).not.toHaveURL(/iata=/);
});
