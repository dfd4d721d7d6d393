// `make krew`: writes krew/kt.yaml from the archives `make dist` wrote.
//
//   node krew/generate.ts [--release dist/release] [--out krew/kt.yaml] [--targets linux-x64,...]
//
// The sha256 of each platform is computed from the archive itself and must
// agree with the archive's .sha256 file, so a manifest never names bytes
// that are not the ones published beside it.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ROOT, packageVersion, sha256 } from '../scripts/dist.ts';
import { TARGETS, archiveName, findTarget, type Target } from '../scripts/dist-targets.ts';
import { PLUGIN_NAME, krewManifest, toYaml, validateManifest, type KrewPlugin, type ReleaseArchive } from './manifest.ts';

export interface GenerateOptions {
  releaseDir: string;
  version: string;
  targets?: readonly Target[];
}

export function releaseArchives(o: GenerateOptions): ReleaseArchive[] {
  return (o.targets ?? TARGETS).map((t) => {
    const name = archiveName(o.version, t);
    const file = join(o.releaseDir, name);
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`make dist\` first`);
    const sum = sha256(readFileSync(file));
    const published = readFileSync(`${file}.sha256`, 'utf8').split(/\s+/)[0];
    if (published !== sum) throw new Error(`${file}.sha256 says ${published}, the archive hashes to ${sum}: rebuild with \`make dist\``);
    return { os: t.os, arch: t.arch, name, sha256: sum, binName: t.binName };
  });
}

export function generate(o: GenerateOptions): KrewPlugin {
  const manifest = krewManifest(o.version, releaseArchives(o));
  const errs = validateManifest(manifest, PLUGIN_NAME);
  if (errs.length) throw new Error(`krew manifest is invalid:\n  ${errs.join('\n  ')}`);
  return manifest;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { release: { type: 'string' }, out: { type: 'string' }, targets: { type: 'string' } },
  });
  const out = values.out ?? join(ROOT, 'krew', `${PLUGIN_NAME}.yaml`);
  const manifest = generate({
    releaseDir: values.release ?? join(ROOT, 'dist/release'),
    version: packageVersion(),
    targets: values.targets ? values.targets.split(',').map((s) => findTarget(s.trim())) : undefined,
  });
  writeFileSync(out, toYaml(manifest));
  process.stdout.write(`${out}: ${manifest.spec.platforms.length} platforms, version ${manifest.spec.version}\n`);
}
