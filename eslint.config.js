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
    // Units a reader can hold: a longer function or file says why in a comment
    // (an eslint-disable line with its reason).
    files: ['plugin/src/**/*.ts'],
    rules: {
      'max-lines-per-function': ['error', { max: 120, skipBlankLines: true, skipComments: true }],
      'max-lines': ['error', { max: 400, skipBlankLines: true, skipComments: true }],
    },
  },
  {
    // One seam for the Kubernetes API: only kube/api.ts loads the client
    // (lazily); everywhere else imports its types only.
    files: ['plugin/src/**/*.ts'],
    ignores: ['plugin/src/kube/api.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { paths: [{ name: '@kubernetes/client-node', allowTypeImports: true, message: 'use the KubeApi of deps.api() (plugin/src/kube/api.ts)' }] }],
      'no-restricted-syntax': ['error', { selector: "ImportExpression[source.value='@kubernetes/client-node']", message: 'use the KubeApi of deps.api() (plugin/src/kube/api.ts)' }],
    },
  },
);
