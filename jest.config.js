/** @type {import('jest').Config} */
export default {
  rootDir: '.',
  testEnvironment: 'node',
  roots: ['<rootDir>/libs', '<rootDir>/test', '<rootDir>/apps'],
  testRegex: '.*\\.(spec|e2e-spec)\\.ts$',
  // The packed packages in the examples: `npm run test:packages` (jest.packages.config.js).
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/packages/'],
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest'] },
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  // The packages are imported by name, as users import them: from their build (libs/*/dist), made current first.
  globalSetup: '<rootDir>/scripts/jest-build.mjs',
  // The examples are apps of their own (test/packages installs them), except the browser example, which runs from here.
  modulePathIgnorePatterns: ['<rootDir>/examples/(?!browser/)'],
  testTimeout: 20000,
  reporters: ['default', '<rootDir>/scripts/summary-reporter.cjs'],
};
