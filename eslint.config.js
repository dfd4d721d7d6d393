// Lint: typescript-eslint's recommended rules, plus the project's own habits
// (no stray console output in library code: printing is main.ts's and
// output.ts's job, see ARCHITECTURE.md rule 8; debug lines go to deps.debug).
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.cluster/**', 'build/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    files: ['plugin/src/**/*.ts', 'proxy-image/src/**/*.ts'],
    ignores: ['plugin/src/main.ts', 'proxy-image/src/main.ts'],
    rules: { 'no-console': 'error' },
  },
  {
    // The router's files and functions stay small enough to read whole (issue 14).
    files: ['proxy-image/src/router/**/*.ts'],
    rules: {
      'max-lines-per-function': ['error', { max: 120, skipBlankLines: true, skipComments: true }],
      'max-lines': ['error', { max: 400, skipBlankLines: true, skipComments: true }],
    },
  },
);
