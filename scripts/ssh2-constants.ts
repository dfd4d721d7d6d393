// esbuild plugins that set ssh2's module constants in our bundles
// (scripts/build.ts): the channel window in the plugin's bundle
// (plugin/src/tunnel/window.ts says why), the channel packet size and the
// longest packet accepted in both the plugin's and the proxy's
// (contract/ssh/packet.ts says why). ssh2 has no option for either. An
// ssh2 that no longer spells a constant as expected, or keeps it in
// another file, fails the build rather than quietly keeping its own value.
import type * as esbuild from 'esbuild';
import { readFileSync } from 'node:fs';
import { CHANNEL_PACKET, MAX_PACKET } from '../contract/ssh/packet.ts';
import { PLUGIN_SSH_WINDOW } from '../plugin/src/tunnel/window.ts';

interface Rewrite {
  /** The file under ssh2/lib/. */
  file: string;
  /** The line as ssh2 1.17 spells it; it must occur exactly once. */
  from: string;
  to: string;
  /** Where the reason is, for the error. */
  see: string;
}

export const SSH2_WINDOW: Rewrite = {
  file: 'Channel.js',
  from: 'const MAX_WINDOW = 2 * 1024 * 1024;',
  to: `const MAX_WINDOW = ${PLUGIN_SSH_WINDOW};`,
  see: 'plugin/src/tunnel/window.ts',
};
export const SSH2_PACKET: Rewrite = {
  file: 'Channel.js',
  from: 'const PACKET_SIZE = 32 * 1024;',
  to: `const PACKET_SIZE = ${CHANNEL_PACKET};`,
  see: 'contract/ssh/packet.ts',
};
export const SSH2_MAX_PACKET: Rewrite = {
  file: 'protocol/crypto.js',
  from: 'const MAX_PACKET_SIZE = 35000;',
  to: `const MAX_PACKET_SIZE = ${MAX_PACKET};`,
  see: 'contract/ssh/packet.ts',
};

function ssh2Constants(name: string, rewrites: readonly Rewrite[]): esbuild.Plugin {
  const files = [...new Set(rewrites.map((r) => r.file))];
  const filter = new RegExp(`[\\\\/]ssh2[\\\\/]lib[\\\\/](${files.map((f) => f.replace(/[./]/g, (c) => (c === '/' ? '[\\\\/]' : '\\.'))).join('|')})$`);
  return {
    name,
    setup(build) {
      const done = new Set<Rewrite>();
      build.onLoad({ filter }, (args) => {
        let text = readFileSync(args.path, 'utf8');
        const path = args.path.replace(/\\/g, '/');
        for (const r of rewrites.filter((r) => path.endsWith(`/ssh2/lib/${r.file}`))) {
          if (text.split(r.from).length !== 2) throw new Error(`${args.path}: expected one "${r.from}"; ssh2 changed, see ${r.see}`);
          text = text.replace(r.from, r.to);
          done.add(r);
        }
        return { contents: text, loader: 'js' };
      });
      // A file that moved would never reach onLoad: say so rather than ship ssh2's value.
      build.onEnd((result) => {
        if (result.errors.length) return;
        const missed = rewrites.filter((r) => !done.has(r));
        if (missed.length) return { errors: missed.map((r) => ({ text: `ssh2/lib/${r.file} was not bundled, so "${r.from}" was not set; ssh2 changed, see ${r.see}` })) };
      });
    },
  };
}

/** The plugin's bundle: its channel window, and our channel packet. */
export const pluginSsh2 = ssh2Constants('plugin-ssh2-constants', [SSH2_WINDOW, SSH2_PACKET, SSH2_MAX_PACKET]);
/** The proxy's bundle: our channel packet; ssh2's window (plugin/src/tunnel/window.ts says why). */
export const proxySsh2 = ssh2Constants('proxy-ssh2-constants', [SSH2_PACKET, SSH2_MAX_PACKET]);
