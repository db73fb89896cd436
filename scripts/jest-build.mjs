// Jest's global setup: builds the packages (incremental, about a second when
// nothing changed), so that tests import by name what users would install.
const { execFileSync } = require('node:child_process');

module.exports = function build() {
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-b', 'tsconfig.build.json'], { stdio: 'inherit' });
};
