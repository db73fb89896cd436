import base from './jest.config.js';

/**
 * `npm run test:packages`: the packed packages installed into the examples
 * (test/packages). Slow (npm installs, several Node versions), so it runs
 * after the main suite rather than beside it.
 */
export default {
  ...base,
  roots: ['<rootDir>/test/packages'],
  testRegex: '.*\\.e2e-spec\\.ts$',
  testPathIgnorePatterns: [],
  testTimeout: 120000,
};
