// Where the tests find the server, the built dashboard and the tools. Each
// can be overridden by an environment variable (xtask sets MESHSCOPE_BIN when
// CARGO_TARGET_DIR moves the build elsewhere).
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');

export const BIN = process.env.MESHSCOPE_BIN ?? path.join(root, 'target', 'debug', 'meshscope');
export const DIST = process.env.MESHSCOPE_DIST ?? path.join(root, 'dist');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SQLITE3 = process.env.SQLITE3 ?? '/usr/bin/sqlite3';
/** Screenshots for the README are written here only when E2E_SCREENSHOTS=1. */
export const SCREENSHOTS = path.join(root, 'end2end', 'screenshots');
