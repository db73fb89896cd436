// @ts-check
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';
import wsrelay from './scripts/eslint/spec-function-lines.mjs';

export default tseslint.config(
  // The examples are apps of their own, with their own settings; the browser example runs from this repository.
  { ignores: ['**/node_modules/**', '**/dist/**', 'coverage/**', 'bench/results/**', 'examples/*', '!examples/browser'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.js', '*.cjs', 'scripts/*.cjs', 'scripts/*/*.mjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
      globals: { ...globals.node },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      // Defaults by ?? (an option set to 0 must stay 0); || stays for text, where an empty string means none.
      'no-restricted-syntax': [
        'error',
        {
          selector:
            "LogicalExpression[operator='||'][right.type=/ArrayExpression|ObjectExpression/], LogicalExpression[operator='||'][right.type='Literal'][right.raw=/^[0-9-]/]",
          message: 'Use ?? for defaults: || replaces 0 as well.',
        },
      ],
    },
  },
  {
    // The packages: small files, each doing one thing (their specs too)...
    files: ['libs/*/src/**/*.ts', 'libs/*/spec-support/**/*.ts'],
    rules: { 'max-lines': ['error', { max: 450, skipBlankLines: false, skipComments: false }] },
  },
  {
    // ...and small functions...
    files: ['libs/*/src/**/*.ts'],
    ignores: ['**/*.spec.ts'],
    rules: { 'max-lines-per-function': ['error', { max: 60, skipBlankLines: false, skipComments: false }] },
  },
  {
    // ...and in their specs, every case, hook and helper (a describe block is a list of cases).
    files: ['libs/*/src/**/*.spec.ts', 'libs/*/spec-support/**/*.ts'],
    plugins: { wsrelay },
    rules: { 'wsrelay/spec-function-lines': ['error', { max: 60 }] },
  },
  {
    // Tests: async helpers without an await and `let x = 0` before a try are common and harmless there;
    // `expect(obj.method)` is how Jest looks at a method.
    files: ['test/**/*.ts', '**/*.spec.ts', 'libs/*/spec-support/**/*.ts'],
    rules: {
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/unbound-method': 'off',
      'no-useless-assignment': 'off',
    },
  },
  {
    // The browser example's page runs in a browser (typed by its own tsconfig: DOM, no Node).
    files: ['examples/browser/page/**/*.ts'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
  },
);
