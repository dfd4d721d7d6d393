// The krew manifest: the rules krew's ValidatePlugin applies, and that the
// YAML we write parses back (with a real YAML parser) to the same object.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { load } from 'js-yaml';
import { DEFAULT_IMAGE } from '../../contract/protocol.ts';
import {
  HOMEPAGE, KREW_API_VERSION, PLUGIN_NAME, krewManifest, toYaml, validateManifest, type KrewPlugin, type ReleaseArchive,
} from '../../krew/manifest.ts';

const hex = (c: string): string => c.repeat(64);
const archives: ReleaseArchive[] = [
  { os: 'linux', arch: 'amd64', name: 'kubectl-kt_1.2.3_linux_amd64.tar.gz', sha256: hex('a'), binName: 'kubectl-kt' },
  { os: 'windows', arch: 'amd64', name: 'kubectl-kt_1.2.3_windows_amd64.zip', sha256: hex('b'), binName: 'kubectl-kt.exe' },
];

function manifest(): KrewPlugin {
  return krewManifest('1.2.3', archives);
}

test('a generated manifest is valid and names version, uri, sha256 and bin per platform', () => {
  const m = manifest();
  assert.deepEqual(validateManifest(m, PLUGIN_NAME), []);
  assert.equal(m.apiVersion, KREW_API_VERSION);
  assert.equal(m.spec.version, 'v1.2.3');
  assert.equal(m.spec.platforms[1].uri, `${HOMEPAGE}/releases/download/v1.2.3/kubectl-kt_1.2.3_windows_amd64.zip`);
  assert.equal(m.spec.platforms[1].bin, 'kubectl-kt.exe');
  assert.deepEqual(m.spec.platforms[1].selector, { matchLabels: { os: 'windows', arch: 'amd64' } });
  assert.deepEqual(m.spec.platforms[0].files, [{ from: 'kubectl-kt', to: '.' }, { from: 'LICENSE', to: '.' }]);
});

test('the YAML parses back to the same manifest', () => {
  const m = manifest();
  assert.deepEqual(load(toYaml(m)), m);
});

test('the release and the image live under the same owner', () => {
  // The plugin's default --image is published with the release the krew manifest points at.
  const owner = new URL(HOMEPAGE).pathname.split('/')[1];
  assert.match(DEFAULT_IMAGE, new RegExp(`^ghcr\\.io/${owner}/kt-proxy:`));
});

const broken: [string, (m: KrewPlugin) => void, RegExp][] = [
  ['wrong apiVersion', (m) => { m.apiVersion = 'krew.googlecontainers.github.com/v1alpha2'; }, /apiVersion/],
  ['name differs from the file name', (m) => { m.metadata.name = 'kubectl-kt'; }, /does not match the file name/],
  ['no short description', (m) => { m.spec.shortDescription = ''; }, /shortDescription is empty/],
  ['line break in short description', (m) => { m.spec.shortDescription = 'a\nb'; }, /line break/],
  ['version without v', (m) => { m.spec.version = '1.2.3'; }, /semantic version/],
  ['version not semver', (m) => { m.spec.version = 'v1.2'; }, /semantic version/],
  ['no platforms', (m) => { m.spec.platforms = []; }, /platforms is empty/],
  ['upper-case sha256', (m) => { m.spec.platforms[0].sha256 = hex('A'); }, /sha256 is not 64/],
  ['short sha256', (m) => { m.spec.platforms[0].sha256 = 'abc'; }, /sha256 is not 64/],
  ['no uri', (m) => { m.spec.platforms[0].uri = ''; }, /uri is empty/],
  ['no bin', (m) => { m.spec.platforms[0].bin = ''; }, /bin is empty/],
  ['empty files', (m) => { m.spec.platforms[0].files = []; }, /files is present but empty/],
  ['file op without to', (m) => { m.spec.platforms[0].files[0].to = ''; }, /needs both from and to/],
  ['unsupported selector key', (m) => { (m.spec.platforms[0].selector.matchLabels as Record<string, string>).distro = 'debian'; }, /not supported/],
  ['overlapping platforms', (m) => { m.spec.platforms[1].selector.matchLabels.os = 'linux'; }, /overlaps/],
];
for (const [name, breakIt, message] of broken) {
  test(`invalid: ${name}`, () => {
    const m = manifest();
    breakIt(m);
    const errs = validateManifest(m, PLUGIN_NAME);
    assert.equal(errs.length, 1, errs.join('; '));
    assert.match(errs[0], message);
  });
}

test('plugin names krew refuses', () => {
  const m = manifest();
  m.metadata.name = 'con';
  assert.match(validateManifest(m, 'con').join(), /not allowed/);
  m.metadata.name = 'a.b';
  assert.match(validateManifest(m, 'a.b').join(), /not allowed/);
});
