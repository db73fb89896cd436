/** @type {import('jest').Config} */
export default {
  rootDir: '.',
  testEnvironment: 'node',
  roots: ['<rootDir>/libs', '<rootDir>/test', '<rootDir>/apps'],
  testRegex: '.*\\.(spec|e2e-spec)\\.ts$',
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest'] },
  moduleNameMapper: {
    '^@wsrelay/protocol$': '<rootDir>/libs/protocol/src/index.ts',
    '^@wsrelay/transport$': '<rootDir>/libs/transport/src/index.ts',
    '^@wsrelay/relay$': '<rootDir>/libs/relay/src/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  testTimeout: 20000,
  reporters: ['default', '<rootDir>/scripts/summary-reporter.cjs'],
};
