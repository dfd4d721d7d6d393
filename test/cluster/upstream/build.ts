// Builds the upstream Kubernetes multi-call binary (main.go) once per set of
// inputs: the binary is kept under .cache/upstream/ named by a hash of
// go.mod, go.sum and main.go, so a test run after the first only checks the
// hash. The Go module and build caches make a rebuild after a change quick.
//   node test/cluster/upstream/build.ts        # prints the binary's path
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';

export const KUBERNETES_VERSION = 'v1.37.2';
/** krew, for the packaging test: installed the way users install the plugin. */
export const KREW_VERSION = 'v0.4.3';
const HERE = import.meta.dirname;
const ROOT = join(HERE, '..', '..', '..');
const CACHE = join(ROOT, '.cache', 'upstream');

function inputsHash(): string {
  const h = createHash('sha256');
  for (const f of ['go.mod', 'go.sum', 'main.go']) h.update(readFileSync(join(HERE, f)));
  return h.digest('hex').slice(0, 16);
}

/** The binary's path for the current inputs (it may not be built yet). */
export function binaryPath(): string {
  return join(CACHE, `kt-k8s-${KUBERNETES_VERSION}-${inputsHash()}`);
}

/** Run the go command with its output on ours; rejects naming `what` when it fails. */
function go(args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('go', args, { ...opts, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${what} failed (exit ${code})`))));
  });
}

let building: Promise<string> | undefined;

/** Build the binary unless it is there; resolves with its path. */
export function ensureBinary(log: (m: string) => void = () => {}): Promise<string> {
  building ??= (async () => {
    const out = binaryPath();
    if (existsSync(out)) return out;
    mkdirSync(CACHE, { recursive: true });
    const [, minor] = /^v1\.(\d+)\./.exec(KUBERNETES_VERSION) ?? [];
    // The version the components report (/version, kubectl version), as upstream's hack/lib/version.sh sets it.
    const ldflags = [
      '-s', '-w',
      `-X k8s.io/component-base/version.gitVersion=${KUBERNETES_VERSION}`,
      '-X k8s.io/component-base/version.gitMajor=1',
      `-X k8s.io/component-base/version.gitMinor=${minor}`,
      '-X k8s.io/component-base/version.gitTreeState=clean',
      `-X k8s.io/client-go/pkg/version.gitVersion=${KUBERNETES_VERSION}`,
      '-X k8s.io/client-go/pkg/version.gitMajor=1',
      `-X k8s.io/client-go/pkg/version.gitMinor=${minor}`,
    ].join(' ');
    const tmp = `${out}.tmp${process.pid}`;
    const started = Date.now();
    log(`building upstream Kubernetes ${KUBERNETES_VERSION} (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, kubectl)…`);
    await go(['build', '-trimpath', `-ldflags=${ldflags}`, '-o', tmp, '.'], { cwd: HERE }, 'go build of test/cluster/upstream');
    renameSync(tmp, out);
    log(`built ${out} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return out;
  })();
  return building;
}

let krew: Promise<string> | undefined;

/** krew built from the Go module proxy (`go install sigs.k8s.io/krew/cmd/krew@KREW_VERSION`); resolves with its path. */
export function ensureKrew(log: (m: string) => void = () => {}): Promise<string> {
  krew ??= (async () => {
    const gobin = join(CACHE, `krew-${KREW_VERSION}`);
    const out = join(gobin, 'krew');
    if (existsSync(out)) return out;
    mkdirSync(gobin, { recursive: true });
    const started = Date.now();
    log(`building krew ${KREW_VERSION}…`);
    // Outside any module: krew pins its own, older Kubernetes libraries.
    await go(['install', '-trimpath', `sigs.k8s.io/krew/cmd/krew@${KREW_VERSION}`], { cwd: CACHE, env: { ...process.env, GOBIN: gobin } }, `go install of krew ${KREW_VERSION}`);
    log(`built ${out} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return out;
  })();
  return krew;
}

if (import.meta.main) {
  const log = (m: string): void => void process.stderr.write(`${m}\n`);
  process.stdout.write(`${await ensureBinary(log)}\n${await ensureKrew(log)}\n`);
}
