// The SSH ends as they ship: ssh2's constants are set in the bundles only
// (scripts/ssh2-constants.ts), so a test or bench of the channel window or
// packet size runs the plugin's tunnel module bundled with the plugin's
// build plugins, and the proxy as dist/kt-proxy.cjs (make build).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { ENV } from '../../contract/protocol.ts';
import { pluginSsh2 } from '../../scripts/ssh2-constants.ts';
import { stderrMatch, terminate } from './ssh-fixtures.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const BUNDLE: esbuild.BuildOptions = {
  bundle: true, platform: 'node', target: 'node26', format: 'cjs', logLevel: 'silent',
  // ssh2's optional native add-ons; it runs without them, as in the real bundles.
  external: ['*.node', 'cpu-features'],
};

/** The built proxy; make build (or make unit, make bench) writes it. */
export function distProxy(): string {
  const main = join(root, 'dist', 'kt-proxy.cjs');
  if (!existsSync(main)) throw new Error(`${main} is missing: run make build`);
  return main;
}

/** Bundles `entry` (a path from the repository root) to dir with the given build plugins, and loads it. */
export async function bundled<T>(dir: string, entry: string, plugins: esbuild.Plugin[], name = 'bundle'): Promise<T> {
  const outfile = join(dir, `${name}.cjs`);
  await esbuild.build({ ...BUNDLE, entryPoints: [join(root, entry)], outfile, plugins });
  return createRequire(import.meta.url)(outfile) as T;
}

/** Bundles the proxy (proxy-image/src/main.ts) to dir with the given build plugins; returns the file to run. */
export async function bundledProxy(dir: string, plugins: esbuild.Plugin[], name = 'proxy'): Promise<string> {
  const outfile = join(dir, `${name}.cjs`);
  await esbuild.build({ ...BUNDLE, entryPoints: [join(root, 'proxy-image/src/main.ts')], outfile, plugins });
  return outfile;
}

/** plugin/src/tunnel as the plugin's bundle has it (its ssh2 constants set). */
export function shippedTunnel(dir: string): Promise<typeof import('../../plugin/src/tunnel/index.ts')> {
  return bundled(dir, 'plugin/src/tunnel/index.ts', [pluginSsh2], 'tunnel');
}

export interface DistProxy {
  port: number;
  child: ChildProcess;
  close(): Promise<void>;
}

/** dist/kt-proxy.cjs (or another build of it) as a shadow proxy process on a free loopback port, taking publicKey. */
export async function startDistProxy(publicKey: string, main = distProxy()): Promise<DistProxy> {
  const child = spawn(process.execPath, [main], {
    env: { PATH: process.env.PATH ?? '', [ENV.role]: 'shadow', [ENV.sshPort]: '0', [ENV.dnsPort]: '0', [ENV.authorizedKeys]: publicKey },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const m = await stderrMatch(child, /ssh on 127\.0\.0\.1:(\d+)/, 'kt-proxy');
  return { port: Number(m[1]), child, close: () => terminate(child) };
}
