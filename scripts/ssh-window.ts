// An esbuild plugin for the plugin's bundle (scripts/build.ts): sets ssh2's
// channel window to PLUGIN_SSH_WINDOW (plugin/src/tunnel/window.ts says why).
import type * as esbuild from 'esbuild';
import { readFileSync } from 'node:fs';
import { PLUGIN_SSH_WINDOW } from '../plugin/src/tunnel/window.ts';

// The plugin's SSH channel window (plugin/src/tunnel/window.ts): ssh2 keeps
// it in a module constant, set here in the plugin's bundle. An ssh2 that
// spells it differently fails the build rather than quietly keeping 2 MiB.
export const SSH2_WINDOW = 'const MAX_WINDOW = 2 * 1024 * 1024;';
export const pluginSshWindow: esbuild.Plugin = {
  name: 'plugin-ssh-window',
  setup(build) {
    build.onLoad({ filter: /[\\/]ssh2[\\/]lib[\\/]Channel\.js$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      if (text.split(SSH2_WINDOW).length !== 2) throw new Error(`${args.path}: expected one "${SSH2_WINDOW}" to set the plugin's SSH window; ssh2 changed, see plugin/src/tunnel/window.ts`);
      return { contents: text.replace(SSH2_WINDOW, `const MAX_WINDOW = ${PLUGIN_SSH_WINDOW};`), loader: 'js' };
    });
  },
};
