// A bookkeeping row another writer (or a hand edit) left `done` with an
// error in it: the error is not shown (only a failure carries one), while a
// `failed` row keeps its error. The rows are planted in the file before the
// server starts, as CoreScope or an operator would leave them.
import { test, expect } from './fixtures';

test.use({
  serverOptions: {
    transmissions: 2_000,
    duty: 1,
    sql: `INSERT INTO _async_migrations (name, status, started_at, ended_at, error, attempts)
            VALUES ('observations_dedup_v1', 'done', datetime('now', '-1 hour'),
                    datetime('now', '-1 hour'), 'stale error left by another writer', 1);
          INSERT INTO _async_migrations (name, status, started_at, ended_at, error, attempts)
            VALUES ('hash_rehash_v1', 'failed', datetime('now', '-1 hour'),
                    datetime('now', '-1 hour'), 'a real failure', 99);`,
  },
});

test('a done row shows no leftover error; a failed row keeps its error', async ({ page }) => {
  await page.goto('/migrations');
  const done = page.locator('tr[data-migration="observations_dedup_v1"]');
  await expect(done.locator('.badge')).toHaveText('done');
  await expect(done.locator('td[data-label="Error"]')).toHaveText('');
  const failed = page.locator('tr[data-migration="hash_rehash_v1"]');
  await expect(failed.locator('.badge')).toHaveText('failed');
  await expect(failed.locator('td[data-label="Error"]')).toHaveText('a real failure');
  await expect(page.locator('body')).not.toContainText('stale error left by another writer');
});
