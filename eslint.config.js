// Lint: typescript-eslint's recommended rules, plus the project's own habits
// (no stray console output in library code: printing is main.ts's and
// output.ts's job, see ARCHITECTURE.md rule 8; debug lines go to deps.debug).
import tseslint from 'typescript-eslint';

/** Files under `dir` may not import anything under the top-level folders `banned`. */
function apart(dir, banned, message) {
  const path = `/(^|\\/)(${banned.join('|')})\\//`;
  return [{
    files: [`${dir}/**/*.ts`],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: banned.map((b) => `**/${b}/**`), message }] }],
      'no-restricted-syntax': ['error', { selector: `ImportExpression[source.value=${path}]`, message }],
    },
  }];
}

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
    files: ['contract/**/*.ts', 'plugin/src/**/*.ts', 'proxy-image/src/**/*.ts'],
    ignores: ['plugin/src/main.ts', 'proxy-image/src/main.ts'],
    rules: { 'no-console': 'error' },
  },
  // The plugin and the proxy meet only in contract/ (ARCHITECTURE.md, "The
  // contract"): neither imports the other's files, and the contract imports
  // neither. no-restricted-imports sees static imports and re-exports; the
  // selector, import() with a literal path.
  ...apart('plugin/src', ['proxy-image'], 'the plugin reaches the proxy only through contract/'),
  ...apart('proxy-image/src', ['plugin'], 'the proxy reaches the plugin only through contract/'),
  ...apart('contract', ['plugin', 'proxy-image'], 'contract/ is what both sides import; it imports neither'),
);
