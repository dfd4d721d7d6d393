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

const PLUGIN_APART = 'the plugin reaches the proxy only through contract/';
const PROXY_PATH = '/(^|\\/)(proxy-image)\\//';

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
  ...apart('plugin/src', ['proxy-image'], PLUGIN_APART),
  ...apart('proxy-image/src', ['plugin'], 'the proxy reaches the plugin only through contract/'),
  ...apart('contract', ['plugin', 'proxy-image'], 'contract/ is what both sides import; it imports neither'),
  {
    // Units a reader can hold: a longer function or file says why in a comment
    // (an eslint-disable line with its reason).
    files: ['plugin/src/**/*.ts', 'proxy-image/src/**/*.ts', 'contract/**/*.ts'],
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
      // Both of plugin/src's no-restricted-syntax rules (this one overrides apart()'s).
      'no-restricted-syntax': ['error',
        { selector: "ImportExpression[source.value='@kubernetes/client-node']", message: 'use the KubeApi of deps.api() (plugin/src/kube/api.ts)' },
        { selector: `ImportExpression[source.value=${PROXY_PATH}]`, message: PLUGIN_APART },
      ],
    },
  },
);
