// Fails early, with the command to run, when something the tests need is missing.
import * as fs from 'node:fs';
import { BIN, CHROMIUM, DIST, SQLITE3 } from './tests/paths';

export default function globalSetup(): void {
  const missing: string[] = [];
  if (!fs.existsSync(BIN)) {
    missing.push(`meshscope binary ${BIN}: run \`cargo build -p meshscope\` (or set MESHSCOPE_BIN)`);
  }
  if (!fs.existsSync(`${DIST}/index.html`)) {
    missing.push(`dashboard ${DIST}/index.html: run \`cargo xtask dist\` (or set MESHSCOPE_DIST)`);
  }
  if (!fs.existsSync(CHROMIUM)) {
    missing.push(`browser ${CHROMIUM}: run \`apt-get install chromium\` (or set CHROMIUM_PATH)`);
  }
  if (!fs.existsSync(SQLITE3)) {
    missing.push(`sqlite3 CLI ${SQLITE3}: run \`apt-get install sqlite3\` (or set SQLITE3)`);
  }
  if (missing.length > 0) {
    throw new Error(`end2end setup is incomplete (\`cargo xtask setup\` installs it all):\n  ${missing.join('\n  ')}`);
  }
}
