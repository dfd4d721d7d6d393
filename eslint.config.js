// Lint: typescript-eslint's recommended rules, plus the project's own habits
// (no stray console output in library code; see STYLE.md).
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
    ignores: ['plugin/src/main.ts', 'proxy-image/src/main.ts', 'plugin/src/ui/**'],
    rules: { 'no-console': 'error' },
  },
);
