// `kubectl kt version`: what runs here and what it would run in the cluster.
// Reads nothing from the cluster and loads neither client-node nor ssh2.
import { PROTOCOL_VERSION, VERSION } from '../../../contract/protocol.ts';
import type { OptionsOf } from '../cli.ts';
import type { Deps } from '../deps.ts';

export interface VersionInfo {
  readonly plugin: string;
  /** The proxy image commands would start (--image or the default). */
  readonly image: string;
  readonly protocol: number;
  readonly node: string;
}

export async function run(opts: OptionsOf<'version'>, _deps: Deps): Promise<VersionInfo> {
  return { plugin: VERSION, image: opts.image, protocol: PROTOCOL_VERSION, node: process.version };
}

export function text(data: unknown): string {
  const v = data as VersionInfo;
  return [
    `kubectl-kt ${v.plugin}`,
    `proxy image: ${v.image}`,
    `protocol:    ${v.protocol}`,
    `node:        ${v.node}`,
  ].join('\n');
}
