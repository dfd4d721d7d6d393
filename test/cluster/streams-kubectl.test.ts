// The real kubectl against the streaming handlers: `kubectl port-forward`
// through the WebSocket-tunnelled SPDY it tries first (1.30+) and through the
// legacy SPDY POST it falls back to, and `kubectl exec` over WebSocket v5 and
// SPDY. The harness answers the few GETs kubectl makes before upgrading.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startHarness, pattern, sha256, BIG_SIZE, HTTP_PORT, REFUSED_PORT, type Harness } from './streams-harness.ts';

const hasKubectl = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0;
const skip = hasKubectl ? false : 'kubectl is not installed';

let h: Harness;
let dir: string;
const children = new Set<ChildProcess>();

before(async () => {
  h = await startHarness({ exec: true });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kt-streams-'));
  fs.writeFileSync(
    path.join(dir, 'kubeconfig'),
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: test',
      `  cluster: {server: "${h.url}"}`,
      'users:',
      '- name: test',
      '  user: {}',
      'contexts:',
      '- name: test',
      '  context: {cluster: test, user: test, namespace: default}',
      'current-context: test',
      '',
    ].join('\n'),
  );
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await h.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function kubectlEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, KUBECONFIG: path.join(dir, 'kubeconfig'), KUBECACHEDIR: path.join(dir, 'cache'), ...extra };
}

function kubectl(args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn('kubectl', args, { env: kubectlEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

function collect(child: ChildProcess): { stdout: () => string; stderr: () => string; exit: Promise<number> } {
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exit = new Promise<number>((resolve) => child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : -1))));
  return { stdout: () => out, stderr: () => err, exit };
}

/** Starts `kubectl port-forward pod/x :REMOTE` and waits for the local port it prints. */
async function portForward(remote: number, env: Record<string, string>): Promise<{ child: ChildProcess; port: number; out: ReturnType<typeof collect> }> {
  const child = kubectl(['port-forward', 'pod/x', `:${remote}`], env);
  const out = collect(child);
  for (;;) {
    const m = /Forwarding from 127\.0\.0\.1:(\d+) ->/.exec(out.stdout());
    if (m) return { child, port: Number(m[1]), out };
    const ended = await Promise.race([once(child.stdout!, 'data').then(() => false), out.exit.then(() => true)]);
    if (ended) throw new Error(`kubectl port-forward exited: ${out.stderr()}`);
  }
}

async function fetchBytes(url: string, init?: RequestInit): Promise<Buffer> {
  const res = await fetch(url, init);
  assert.equal(res.status, 200);
  return Buffer.from(await res.arrayBuffer());
}

interface Mode {
  name: string;
  env: Record<string, string>;
  upgrade: RegExp;
}

const modes: Mode[] = [
  { name: 'WebSocket-tunnelled SPDY (default)', env: {}, upgrade: /^GET websocket SPDY\/3\.1\+portforward\.k8s\.io$/ },
  { name: 'SPDY POST upgrade (KUBECTL_PORT_FORWARD_WEBSOCKETS=false)', env: { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' }, upgrade: /^POST SPDY\/3\.1$/ },
];

for (const mode of modes) {
  test(`kubectl port-forward over ${mode.name}: curl, large transfers, concurrency, cleanup`, { skip }, async () => {
    const seen = h.upgrades.length;
    const pf = await portForward(HTTP_PORT, mode.env);
    const base = `http://127.0.0.1:${pf.port}`;

    assert.equal((await fetchBytes(`${base}/hello`)).toString(), 'hello from the pod\n');
    // curl, as a user would (asynchronously: the API server lives in this process).
    const curl = spawn('curl', ['-sS', '--max-time', '30', `${base}/hello`]);
    const curlOut = collect(curl);
    assert.equal(await curlOut.exit, 0, curlOut.stderr());
    assert.equal(curlOut.stdout(), 'hello from the pod\n');

    const big = await fetchBytes(`${base}/big`);
    assert.equal(big.length, BIG_SIZE);
    assert.equal(sha256(big), sha256(pattern(BIG_SIZE, 7)));
    const upload = pattern(6 * 1024 * 1024, 99);
    assert.equal((await fetchBytes(`${base}/sha`, { method: 'POST', body: upload })).toString(), sha256(upload));

    const many = await Promise.all(Array.from({ length: 16 }, () => fetchBytes(`${base}/hello`, { headers: { connection: 'close' } })));
    assert.ok(many.every((b) => b.toString() === 'hello from the pod\n'));

    // Only the expected form was used (no fallback in the default mode).
    assert.ok(h.upgrades.slice(seen).length > 0);
    for (const u of h.upgrades.slice(seen)) assert.match(u, mode.upgrade);

    // A connection left open through the forward; killing kubectl must close it at the pod too.
    const open = net.connect(pf.port, '127.0.0.1');
    open.on('error', () => {});
    open.write('GET /hello HTTP/1.1\r\nHost: x\r\n\r\n');
    await once(open, 'data');
    assert.ok(h.openUpstreams() >= 1);
    pf.child.kill('SIGTERM');
    await pf.out.exit;
    await h.upstreamsClosed();
    assert.equal(h.openUpstreams(), 0);
    open.destroy();
  });

  test(`kubectl port-forward over ${mode.name}: a refused pod port is reported`, { skip }, async () => {
    const pf = await portForward(REFUSED_PORT, mode.env);
    const s = net.connect(pf.port, '127.0.0.1');
    s.on('error', () => {});
    await once(s, 'close');
    // kubectl >= 1.31 gives up on the whole forward after an error on the error stream.
    const code = await pf.out.exit;
    assert.notEqual(code, 0);
    assert.match(pf.out.stderr(), /error forwarding port 1 to pod x, uid : .*ECONNREFUSED/);
  });
}

const execModes: Mode[] = [
  { name: 'WebSocket v5 (default)', env: {}, upgrade: /^GET websocket v5\.channel\.k8s\.io/ },
  { name: 'SPDY (KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false)', env: { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' }, upgrade: /^POST SPDY\/3\.1$/ },
];

async function exec(args: string[], env: Record<string, string>, stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = kubectl(['exec', ...args], env);
  const out = collect(child);
  child.stdin!.end(stdin ?? '');
  const code = await out.exit;
  return { code, stdout: out.stdout(), stderr: out.stderr() };
}

for (const mode of execModes) {
  test(`kubectl exec over ${mode.name}: output, stdin, exit codes`, { skip }, async () => {
    const seen = h.upgrades.length;
    const hi = await exec(['pod/x', '--', 'echo', 'hi'], mode.env);
    assert.deepEqual(hi, { code: 0, stdout: 'hi\n', stderr: '' });
    const cat = await exec(['-i', 'pod/x', '--', 'cat'], mode.env, 'through stdin\n');
    assert.equal(cat.stdout, 'through stdin\n');
    assert.equal(cat.code, 0);
    const failed = await exec(['pod/x', '--', 'sh', '-c', 'echo to-stderr >&2; exit 3'], mode.env);
    assert.equal(failed.code, 3);
    assert.match(failed.stderr, /to-stderr/);
    assert.match(failed.stderr, /command terminated with exit code 3/);
    // Output larger than any buffer on the way, all of it before the exit status.
    const seq = await exec(['pod/x', '--', 'seq', '1', '400000'], mode.env);
    assert.equal(seq.code, 0);
    assert.equal(sha256(Buffer.from(seq.stdout)), sha256(Buffer.from(Array.from({ length: 400000 }, (_, i) => `${i + 1}\n`).join(''))));
    const missing = await exec(['pod/x', '--', '/nonexistent/binary'], mode.env);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /ENOENT/);
    for (const u of h.upgrades.slice(seen)) assert.match(u, mode.upgrade);
  });
}
