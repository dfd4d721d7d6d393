// The plugin's bundle opens SSH channels with PLUGIN_SSH_WINDOW, not ssh2's
// 2 MiB (plugin/src/tunnel/window.ts, scripts/ssh-window.ts). ssh2 is
// bundled here with and without the build's plugin, and a server sees the
// window a client of that bundle offers when it opens a channel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import type * as Ssh2 from 'ssh2';
import { PLUGIN_SSH_WINDOW } from '../../plugin/src/tunnel/window.ts';
import { pluginSshWindow } from '../../scripts/ssh-window.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

async function bundledSsh2(dir: string, plugins: esbuild.Plugin[]): Promise<typeof Ssh2> {
  const outfile = join(dir, `ssh2-${plugins.length}.cjs`);
  await esbuild.build({
    stdin: { contents: "module.exports = require('ssh2');", resolveDir: root, loader: 'js' },
    outfile, bundle: true, platform: 'node', target: 'node26', format: 'cjs', logLevel: 'silent',
    external: ['*.node', 'cpu-features'], plugins,
  });
  return createRequire(import.meta.url)(outfile) as typeof Ssh2;
}

/** The initial window a client of this ssh2 offers on a direct-tcpip channel, as the server sees it. */
async function offeredWindow(ssh2: typeof Ssh2): Promise<number> {
  const hostKey = ssh2.utils.generateKeyPairSync('ed25519').private;
  let seen!: (w: number) => void;
  const window = new Promise<number>((resolve) => (seen = resolve));
  const server = new ssh2.Server({ hostKeys: [hostKey] }, (conn) => {
    conn.on('error', () => undefined);
    conn.on('authentication', (ctx) => ctx.accept());
    conn.on('ready', () => conn.on('tcpip', (accept) => {
      const ch = accept() as unknown as { outgoing: { window: number }; close(): void };
      seen(ch.outgoing.window);
      ch.close();
    }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = new ssh2.Client();
  try {
    client.on('error', () => undefined);
    client.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, username: 'kt', password: 'x' });
    await once(client, 'ready');
    client.forwardOut('127.0.0.1', 1, '127.0.0.1', 2, () => undefined);
    return await window;
  } finally {
    client.end();
    server.close();
  }
}

test('the plugin bundle offers PLUGIN_SSH_WINDOW per channel; ssh2 as published offers 2 MiB', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kt-ssh-window-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const [plain, plugin] = [await bundledSsh2(dir, []), await bundledSsh2(dir, [pluginSshWindow])];
  assert.equal(await offeredWindow(plain), 2 * 2 ** 20);
  assert.equal(await offeredWindow(plugin), PLUGIN_SSH_WINDOW);
  assert.ok(PLUGIN_SSH_WINDOW > 2 * 2 ** 20);
});

test('a bundle of an ssh2 that no longer spells the window as expected fails to build', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kt-ssh-window-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const lib = join(dir, 'node_modules', 'ssh2', 'lib');
  await mkdir(lib, { recursive: true });
  await writeFile(join(lib, 'Channel.js'), 'const MAX_WINDOW = 4 * 1024 * 1024;\nmodule.exports = { MAX_WINDOW };\n');
  await assert.rejects(esbuild.build({
    stdin: { contents: "module.exports = require('./node_modules/ssh2/lib/Channel.js');", resolveDir: dir, loader: 'js' },
    write: false, bundle: true, platform: 'node', format: 'cjs', logLevel: 'silent', plugins: [pluginSshWindow],
  }), /expected one "const MAX_WINDOW = 2 \* 1024 \* 1024;"/);
});
