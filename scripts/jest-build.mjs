// Jest's global setup: builds the packages (incremental, about a second when
// nothing changed), so that tests import by name what users would install.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default async function build() {
  const tsc = fileURLToPath(import.meta.resolve('typescript/bin/tsc'));
  execFileSync(process.execPath, [tsc, '-b', 'tsconfig.build.json'], { stdio: 'inherit' });
}
