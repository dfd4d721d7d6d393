// The krew plugin manifest for kubectl-kt: built from the release archives,
// written as YAML, and checked against the rules krew itself applies
// (sigs.k8s.io/krew internal/index/validation: ValidatePlugin,
// validatePlatform, validateSelector). Pure: no I/O.

/** krew's constants.CurrentAPIVersion. */
export const KREW_API_VERSION = 'krew.googlecontainertools.github.com/v1alpha2';
export const PLUGIN_NAME = 'kt';
export const HOMEPAGE = 'https://github.com/kubectl-kt/kubectl-kt';

export function releaseUri(version: string, archive: string): string {
  return `${HOMEPAGE}/releases/download/v${version}/${archive}`;
}

export const SHORT_DESCRIPTION = 'Develop one service locally against a cluster: connect, exchange, mesh, preview';

export const DESCRIPTION = `Run one service on your laptop while the rest of the system runs in
Kubernetes, and have the two talk as if they shared one network.

  kubectl kt connect     reach pod IPs, Service IPs and cluster DNS names
                         (SOCKS5/HTTP proxy, or routes with root)
  kubectl kt exchange    send all traffic of a Service to a local port
  kubectl kt mesh        send only requests with a given header to you
  kubectl kt preview     expose a local port as a new Service
  kubectl kt forward     a cluster address on a local port
  kubectl kt status      who connects, exchanges, meshes and previews what
  kubectl kt clean       remove what a crashed session left behind

Everything goes through pods/portforward to one small proxy pod, so it
needs no cluster add-on, no Istio and no privileged pods.
`;

export const CAVEATS = `On macOS on Apple silicon the binary is not signed, and macOS refuses to
run unsigned arm64 code. Sign it ad hoc once after installing:

  codesign --sign - "$(readlink "\${KREW_ROOT:-$HOME/.krew}/bin/kubectl-kt")"
`;

export interface KrewPlatform {
  selector: { matchLabels: { os: string; arch: string } };
  uri: string;
  sha256: string;
  bin: string;
  files: { from: string; to: string }[];
}

export interface KrewPlugin {
  apiVersion: string;
  kind: 'Plugin';
  metadata: { name: string };
  spec: {
    version: string;
    homepage: string;
    shortDescription: string;
    description: string;
    caveats: string;
    platforms: KrewPlatform[];
  };
}

export interface ReleaseArchive {
  os: string;
  arch: string;
  /** File name of the archive, as published. */
  name: string;
  sha256: string;
  /** The executable's name inside the archive. */
  binName: string;
}

export function krewManifest(version: string, archives: readonly ReleaseArchive[]): KrewPlugin {
  return {
    apiVersion: KREW_API_VERSION,
    kind: 'Plugin',
    metadata: { name: PLUGIN_NAME },
    spec: {
      version: `v${version}`,
      homepage: HOMEPAGE,
      shortDescription: SHORT_DESCRIPTION,
      description: DESCRIPTION,
      caveats: CAVEATS,
      platforms: archives.map((a) => ({
        selector: { matchLabels: { os: a.os, arch: a.arch } },
        uri: releaseUri(version, a.name),
        sha256: a.sha256,
        bin: a.binName,
        files: [
          { from: a.binName, to: '.' },
          { from: 'LICENSE', to: '.' },
        ],
      })),
    },
  };
}

// YAML output: plain keys, JSON-quoted scalars (a JSON string is a valid
// YAML double-quoted scalar), literal blocks for the multi-line texts.
function scalar(value: string, indent: string): string {
  if (!value.includes('\n')) return JSON.stringify(value);
  const body = value.replace(/\n$/, '').split('\n').map((l) => (l === '' ? '' : `${indent}  ${l}`));
  return `|\n${body.join('\n')}`;
}

export function toYaml(p: KrewPlugin): string {
  const out: string[] = [
    `apiVersion: ${p.apiVersion}`,
    `kind: ${p.kind}`,
    'metadata:',
    `  name: ${JSON.stringify(p.metadata.name)}`,
    'spec:',
    `  version: ${JSON.stringify(p.spec.version)}`,
    `  homepage: ${JSON.stringify(p.spec.homepage)}`,
    `  shortDescription: ${scalar(p.spec.shortDescription, '  ')}`,
    `  description: ${scalar(p.spec.description, '  ')}`,
    `  caveats: ${scalar(p.spec.caveats, '  ')}`,
    '  platforms:',
  ];
  for (const pl of p.spec.platforms) {
    out.push(
      '    - selector:',
      '        matchLabels:',
      `          os: ${JSON.stringify(pl.selector.matchLabels.os)}`,
      `          arch: ${JSON.stringify(pl.selector.matchLabels.arch)}`,
      `      uri: ${JSON.stringify(pl.uri)}`,
      `      sha256: ${JSON.stringify(pl.sha256)}`,
      `      bin: ${JSON.stringify(pl.bin)}`,
      '      files:',
      ...pl.files.flatMap((f) => [`        - from: ${JSON.stringify(f.from)}`, `          to: ${JSON.stringify(f.to)}`]),
    );
  }
  return out.join('\n') + '\n';
}

// krew parses versions with k8s.io/apimachinery's ParseSemantic after
// requiring the "v" prefix (internal/installation/semver).
const SEMVER_V = /^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$/;
const SAFE_NAME = /^[\w-]+$/;
const SHA256 = /^[a-f0-9]{64}$/;
const WINDOWS_RESERVED = new Set(['CON', 'PRN', 'AUX', 'NUL', ...Array.from({ length: 9 }, (_, i) => `COM${i + 1}`), ...Array.from({ length: 9 }, (_, i) => `LPT${i + 1}`)]);

/**
 * Every rule krew's ValidatePlugin applies, plus the index's check that no
 * two platforms select the same os/arch. Returns the problems; empty = valid.
 * `name` is the manifest's file name without .yaml, as krew checks it.
 */
export function validateManifest(p: KrewPlugin, name: string): string[] {
  const errs: string[] = [];
  if (p.apiVersion !== KREW_API_VERSION) errs.push(`apiVersion ${JSON.stringify(p.apiVersion)} is not ${KREW_API_VERSION}`);
  if (p.kind !== 'Plugin') errs.push(`kind ${JSON.stringify(p.kind)} is not Plugin`);
  if (!SAFE_NAME.test(name) || WINDOWS_RESERVED.has(name.toUpperCase())) errs.push(`plugin name ${JSON.stringify(name)} is not allowed`);
  if (p.metadata?.name !== name) errs.push(`metadata.name ${JSON.stringify(p.metadata?.name)} does not match the file name ${JSON.stringify(name)}`);
  const spec = p.spec;
  if (!spec?.shortDescription) errs.push('spec.shortDescription is empty');
  else if (/[\r\n]/.test(spec.shortDescription)) errs.push('spec.shortDescription has a line break');
  if (!spec?.version) errs.push('spec.version is empty');
  else if (!SEMVER_V.test(spec.version)) errs.push(`spec.version ${JSON.stringify(spec.version)} is not a semantic version with a v prefix`);
  if (!spec?.platforms?.length) {
    errs.push('spec.platforms is empty');
    return errs;
  }
  const seen = new Set<string>();
  spec.platforms.forEach((pl, i) => {
    const at = `spec.platforms[${i}]`;
    if (!pl.uri) errs.push(`${at}.uri is empty`);
    if (!pl.sha256) errs.push(`${at}.sha256 is empty`);
    else if (!SHA256.test(pl.sha256)) errs.push(`${at}.sha256 is not 64 lower-case hex digits`);
    if (!pl.bin) errs.push(`${at}.bin is empty`);
    if (pl.files !== undefined) {
      if (pl.files.length === 0) errs.push(`${at}.files is present but empty`);
      for (const f of pl.files) if (!f.from || !f.to) errs.push(`${at}.files needs both from and to`);
    }
    const labels = pl.selector?.matchLabels;
    if (!labels || Object.keys(labels).length === 0) {
      errs.push(`${at}.selector is empty`);
      return;
    }
    for (const k of Object.keys(labels)) if (k !== 'os' && k !== 'arch') errs.push(`${at}.selector key ${JSON.stringify(k)} is not supported`);
    const key = `${labels.os}/${labels.arch}`;
    if (seen.has(key)) errs.push(`${at}.selector ${key} overlaps another platform`);
    seen.add(key);
  });
  return errs;
}
