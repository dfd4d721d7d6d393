// ssh2's constants as our bundles set them (scripts/ssh2-constants.ts): the
// plugin's channel window (plugin/src/tunnel/window.ts) and both ends'
// channel packet size (contract/ssh/packet.ts). ssh2 is bundled here with
// and without the build's plugins; the proxy runs as dist/kt-proxy.cjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import * as esbuild from 'esbuild';
import type * as Ssh2 from 'ssh2';
import { SSH_USER } from '../../contract/protocol.ts';
import { CHANNEL_PACKET } from '../../contract/ssh/packet.ts';
import { PLUGIN_SSH_WINDOW } from '../../plugin/src/tunnel/window.ts';
import { openTunnel as publishedTunnel } from '../../plugin/src/tunnel/index.ts';
import { pluginSsh2, proxySsh2 } from '../../scripts/ssh2-constants.ts';
import { bundled, bundledProxy, shippedTunnel, startDistProxy } from './ssh-bundles.ts';
import { PORT_LISTENER_READY, closeAfter, echoServer, freePort, sha256, stderrMatch, terminate } from './ssh-fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'kt-ssh-constants-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const ssh2Bundle = (plugins: esbuild.Plugin[], name: string) => bundled<typeof Ssh2>(dir, 'node_modules/ssh2/lib/index.js', plugins, name);
const [published, pluginSsh2Bundle, proxySsh2Bundle] = await Promise.all([
  ssh2Bundle([], 'ssh2-published'),
  ssh2Bundle([pluginSsh2], 'ssh2-plugin'),
  ssh2Bundle([proxySsh2], 'ssh2-proxy'),
]);
const shipped = await shippedTunnel(dir);

/** The window and maximum packet a client of `client` offers on a direct-tcpip channel, and those a server of `server` answers with. */
async function offered(client: typeof Ssh2, server: typeof Ssh2): Promise<{ client: [number, number]; server: [number, number] }> {
  const hostKey = server.utils.generateKeyPairSync('ed25519').private;
  let seen!: (w: [number, number]) => void;
  const byClient = new Promise<[number, number]>((resolve) => (seen = resolve));
  const srv = new server.Server({ hostKeys: [hostKey] }, (conn) => {
    conn.on('error', () => undefined);
    conn.on('authentication', (ctx) => ctx.accept());
    conn.on('ready', () => conn.on('tcpip', (accept) => {
      const ch = accept() as unknown as { outgoing: { window: number; packetSize: number } };
      seen([ch.outgoing.window, ch.outgoing.packetSize]);
    }));
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const c = new client.Client();
  try {
    c.on('error', () => undefined);
    c.connect({ host: '127.0.0.1', port: (srv.address() as net.AddressInfo).port, username: 'kt', password: 'x' });
    await once(c, 'ready');
    const bySrv = new Promise<[number, number]>((resolve, reject) => c.forwardOut('127.0.0.1', 1, '127.0.0.1', 2, (err, ch) => {
      if (err) reject(err);
      const o = (ch as unknown as { outgoing: { window: number; packetSize: number } }).outgoing;
      resolve([o.window, o.packetSize]);
      ch.close();
    }));
    return { client: await byClient, server: await bySrv };
  } finally {
    c.end();
    srv.close();
  }
}

test('the plugin bundle offers its window and our packet size; the proxy bundle our packet size and ssh2\'s window', async () => {
  assert.deepEqual(await offered(published, published), { client: [2 * 2 ** 20, 32 * 1024], server: [2 * 2 ** 20, 32 * 1024] });
  assert.deepEqual(await offered(pluginSsh2Bundle, proxySsh2Bundle), {
    client: [PLUGIN_SSH_WINDOW, CHANNEL_PACKET],
    server: [2 * 2 ** 20, CHANNEL_PACKET],
  });
  assert.ok(PLUGIN_SSH_WINDOW > 2 * 2 ** 20);
  assert.ok(CHANNEL_PACKET > 32 * 1024);
});

/** The largest CHANNEL_DATA each way, from ssh2's debug lines of one side. */
function packetSizes(): { debug: (line: string) => void; inbound: number; outbound: number } {
  const sizes = {
    inbound: 0,
    outbound: 0,
    debug(line: string) {
      const m = /(Inbound|Outbound): (?:Sending )?CHANNEL_DATA \(r:\d+, (\d+)\)/.exec(line);
      if (m?.[1] === 'Inbound') sizes.inbound = Math.max(sizes.inbound, Number(m[2]));
      else if (m) sizes.outbound = Math.max(sizes.outbound, Number(m[2]));
    },
  };
  return sizes;
}

test('the shipped ends move packets of up to CHANNEL_PACKET both ways; a published ssh2 at either end gets 32 KiB ones', async (t) => {
  const key = shipped.makeSessionKey();
  const proxy = await startDistProxy(key.publicKey);
  const echo = await echoServer();
  t.after(() => Promise.all([proxy.close(), echo.close()]));

  const ours = packetSizes();
  const tunnel = await shipped.openTunnel({ stream: net.connect(proxy.port, '127.0.0.1'), privateKey: key.privateKey, debug: ours.debug });
  closeAfter(t, tunnel);
  await echoThrough(await tunnel.connect('127.0.0.1', echo.port));
  // Outbound, the client writes 4 MiB at once; inbound, the proxy sends what it read from its
  // socket in one event-loop turn (contract/ssh/splice.ts), more than one 64 KiB read.
  assert.equal(ours.outbound, CHANNEL_PACKET);
  assert.ok(ours.inbound > 64 * 1024 && ours.inbound <= CHANNEL_PACKET, `inbound ${ours.inbound}`);

  // An older plugin (ssh2's 32 KiB) against this proxy: it sends what the proxy offers and gets what it offers.
  const old = packetSizes();
  const oldTunnel = await publishedTunnel({ stream: net.connect(proxy.port, '127.0.0.1'), privateKey: key.privateKey, debug: old.debug });
  closeAfter(t, oldTunnel);
  await echoThrough(await oldTunnel.connect('127.0.0.1', echo.port));
  assert.deepEqual([old.inbound, old.outbound], [32 * 1024, CHANNEL_PACKET]);

  // This plugin against an older proxy (bundled with ssh2's constants as published).
  const oldProxy = await startDistProxy(key.publicKey, await bundledProxy(dir, [], 'proxy-published'));
  t.after(() => oldProxy.close());
  const toOld = packetSizes();
  const tunnelToOld = await shipped.openTunnel({ stream: net.connect(oldProxy.port, '127.0.0.1'), privateKey: key.privateKey, debug: toOld.debug });
  closeAfter(t, tunnelToOld);
  await echoThrough(await tunnelToOld.connect('127.0.0.1', echo.port));
  assert.ok(toOld.inbound > 32 * 1024 && toOld.inbound <= CHANNEL_PACKET, `inbound ${toOld.inbound}`);
  assert.equal(toOld.outbound, 32 * 1024);
});

test('OpenSSH -L and -R through the shipped proxy carry data both ways', async (t) => {
  const key = shipped.makeSessionKey();
  const proxy = await startDistProxy(key.publicKey);
  t.after(() => proxy.close());
  const keyFile = join(dir, 'openssh-key');
  writeFileSync(keyFile, key.privateKey);
  chmodSync(keyFile, 0o600);
  const ssh = async (forward: string[], ready: RegExp) => {
    const child = spawn('/usr/bin/ssh', [
      '-F', '/dev/null', '-v', '-N', '-i', keyFile,
      '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no',
      '-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`, '-o', 'ExitOnForwardFailure=yes',
      '-p', String(proxy.port), ...forward, `${SSH_USER}@127.0.0.1`,
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    t.after(() => terminate(child));
    return stderrMatch(child, ready, 'ssh');
  };
  const tcp = async (port: number) => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    await once(s, 'connect');
    return s;
  };

  // -L: OpenSSH's packets into the proxy (up to what the proxy offers), the proxy's out (OpenSSH's 32 KiB).
  const echo = await echoServer();
  t.after(() => echo.close());
  const local = await freePort();
  await ssh(['-L', `127.0.0.1:${local}:127.0.0.1:${echo.port}`], PORT_LISTENER_READY);
  await echoThrough(await tcp(local));
  // -R: the proxy opens forwarded-tcpip channels to OpenSSH.
  const m = await ssh(['-R', `0:127.0.0.1:${echo.port}`], /Allocated port (\d+) for remote forward/);
  await echoThrough(await tcp(Number(m[1])));
});

/** 4 MiB to an echo server and back, read until all of it came back. */
async function echoThrough(s: Duplex): Promise<void> {
  const out = randomBytes(4 * 2 ** 20);
  const back: Buffer[] = [];
  let got = 0;
  const all = new Promise<void>((resolve, reject) => {
    s.on('data', (d: Buffer) => {
      back.push(d);
      if ((got += d.length) >= out.length) resolve();
    });
    s.once('error', reject);
    s.once('close', () => reject(new Error(`closed after ${got} of ${out.length} bytes`)));
  });
  s.write(out);
  await all;
  s.destroy();
  assert.equal(sha256(Buffer.concat(back)), sha256(out));
}

test('a bundle of an ssh2 that no longer spells a constant, or keeps it elsewhere, fails to build', async () => {
  const fake = join(dir, 'fake');
  const lib = join(fake, 'node_modules', 'ssh2', 'lib');
  await mkdir(join(lib, 'protocol'), { recursive: true });
  const build = (entry: string) => esbuild.build({
    stdin: { contents: `module.exports = require(${JSON.stringify(entry)});`, resolveDir: fake, loader: 'js' },
    write: false, bundle: true, platform: 'node', format: 'cjs', logLevel: 'silent', plugins: [pluginSsh2],
  });
  await writeFile(join(lib, 'Channel.js'), 'const PACKET_SIZE = 32 * 1024;\nconst MAX_WINDOW = 4 * 1024 * 1024;\nmodule.exports = { MAX_WINDOW };\n');
  await assert.rejects(build('./node_modules/ssh2/lib/Channel.js'), /expected one "const MAX_WINDOW = 2 \* 1024 \* 1024;"/);
  await writeFile(join(lib, 'Channel.js'), 'const PACKET_SIZE = 32 * 1024;\nconst MAX_WINDOW = 2 * 1024 * 1024;\nmodule.exports = { MAX_WINDOW };\n');
  await writeFile(join(lib, 'protocol', 'crypto.js'), 'const MAX_PACKET_SIZE = 35 * 1000;\nmodule.exports = { MAX_PACKET_SIZE };\n');
  await writeFile(join(lib, 'index.js'), "module.exports = [require('./Channel.js'), require('./protocol/crypto.js')];\n");
  await assert.rejects(build('./node_modules/ssh2/lib/index.js'), /expected one "const MAX_PACKET_SIZE = 35000;"/);
  // Channel.js alone: the packet limit in crypto.js was never set.
  await assert.rejects(build('./node_modules/ssh2/lib/Channel.js'), /protocol\/crypto\.js was not bundled/);
});
