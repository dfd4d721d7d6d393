import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../plugin/src/app.ts';
import { parseArgv, suggest } from '../../plugin/src/args.ts';
import { COMMANDS, TABLE } from '../../plugin/src/cli.ts';
import { isKtError, type ErrorCode } from '../../plugin/src/errors.ts';
import { DEFAULT_IMAGE, PROTOCOL_VERSION, VERSION } from '../../contract/protocol.ts';

interface Result {
  code: number;
  out: string;
  err: string;
}

async function kt(argv: string[], env: Record<string, string> = {}): Promise<Result> {
  let out = '';
  let err = '';
  const code = await run(argv, {
    out: { write: (s: string) => (out += s) },
    err: { write: (s: string) => (err += s) },
    env,
    signal: new AbortController().signal,
    clock: { now: () => 0 },
  });
  return { code, out, err };
}

/** A usage or runtime failure: the exit status, one stderr line with the code, nothing on stdout. */
function assertFails(r: Result, code: ErrorCode, exit: number): void {
  assert.equal(r.code, exit, r.err);
  assert.equal(r.out, '');
  const lines = r.err.split('\n');
  assert.equal(lines.length, 2, `one line: ${r.err}`);
  assert.ok(lines[0].startsWith(`error ${code}: `), r.err);
  assert.match(lines[0], / — /);
}

function parseError(argv: string[]): ErrorCode | undefined {
  try {
    parseArgv(argv, TABLE);
    return undefined;
  } catch (e) {
    assert.ok(isKtError(e), String(e));
    return e.code;
  }
}

const names = Object.keys(COMMANDS).filter((n) => !(COMMANDS as Record<string, { hidden?: boolean }>)[n].hidden);

test('the table has every command of the design, each with help text and an example', () => {
  assert.deepEqual(names, ['connect', 'exchange', 'mesh', 'preview', 'forward', 'status', 'clean', 'recover',
    'dashboard', 'rbac', 'version', 'completion', 'help']);
  assert.doesNotMatch(COMMANDS.__complete.summary, /^$/);
});

test('help for every command: `help CMD`, `CMD --help` and `CMD -h` agree, exit 0, show usage and example', async () => {
  const top = await kt(['--help']);
  assert.equal(top.code, 0);
  for (const n of names) {
    assert.match(top.out, new RegExp(`^  ${n} +\\S`, 'm'), n);
    const a = await kt(['help', n]);
    const b = await kt([n, '--help']);
    const c = await kt([n, '-h', '-n', 'x']);
    assert.equal(a.code, 0, a.err);
    assert.equal(a.out, b.out);
    assert.equal(a.out, c.out);
    assert.match(a.out, new RegExp(`^Usage:\\n  kubectl kt ${n}`, 'm'));
    assert.match(a.out, /^Examples?:\n  # .+\n  (sudo |source <\()?kubectl kt /m);
    assert.match(a.out, /-n, --namespace NAME/);
  }
  assert.equal((await kt([])).out, top.out, 'no arguments shows the top help');
  assert.equal((await kt(['help'])).out, top.out);
  // --help wins over what is wrong or missing on the rest of the line.
  assert.equal((await kt(['exchange', '--help'])).code, 0);
  assert.equal((await kt(['exchange', 'svc/Bad_Name', '--help'])).code, 0);
});

test('every example in the table is a valid command line', () => {
  for (const [name, spec] of Object.entries(COMMANDS)) {
    for (const e of spec.examples) {
      const m = /kubectl kt ([^|)]*)/.exec(e.command);
      assert.ok(m, e.command);
      const argv = m[1].trim().split(/\s+/).map((w) => (w === '""' ? '' : w));
      const p = parseArgv(argv, TABLE);
      assert.equal(p.name, name, e.command);
    }
  }
});

test('flags: --flag=value, --flag value, -n ns, -nns, -A, repeatable lists, `--`', () => {
  const p = parseArgv(['-n', 'shop', 'connect', '--socks-port=1090', '--http-port', '1091', '-A', '--namespaces', 'a,b',
    '--namespaces=c', '--', 'curl', '-v', 'http://web'], TABLE);
  assert.equal(p.name, 'connect');
  const o = p.options as Record<string, unknown>;
  assert.equal(o.namespace, 'shop');
  assert.equal(o.socksPort, 1090);
  assert.equal(o.httpPort, 1091);
  assert.equal(o.allNamespaces, true);
  assert.deepEqual(o.namespaces, ['a', 'b', 'c']);
  assert.deepEqual(o.rest, ['curl', '-v', 'http://web']);
  assert.equal(o.mode, 'socks', 'default');
  assert.equal(o.image, DEFAULT_IMAGE);
  assert.equal(o.output, 'text');

  const q = parseArgv(['exchange', 'deploy/web', '-nshop', '--expose', '8080:80,9090', '--expose=7000', '--mode', 'scale',
    '-o', 'json', '--context=prod', '--debug'], TABLE).options as Record<string, unknown>;
  assert.deepEqual(q.target, { kind: 'deployment', name: 'web' });
  assert.deepEqual(q.expose, [{ local: 8080, remote: 80 }, { local: 9090, remote: 9090 }, { local: 7000, remote: 7000 }]);
  assert.equal(q.mode, 'scale');
  assert.equal(q.namespace, 'shop');
  assert.equal(q.output, 'json');
  assert.equal(q.context, 'prod');
  assert.equal(q.debug, true);

  const m = parseArgv(['mesh', 'web', '--expose', '8080', '--header', 'X-User=alice', '--header', 'x-env~=^dev-'], TABLE);
  assert.deepEqual((m.options as Record<string, unknown>).header, [
    { name: 'x-user', kind: 'exact', value: 'alice' }, { name: 'x-env', kind: 'regex', pattern: '^dev-' }]);
  assert.deepEqual((m.options as Record<string, unknown>).target, { name: 'web' });

  const f = parseArgv(['forward', 'svc/postgres', '5432:15432'], TABLE).options as Record<string, unknown>;
  assert.deepEqual(f.target, { kind: 'service', name: 'postgres' });
  assert.deepEqual(f.ports, { local: 5432, remote: 15432 });
  assert.equal(parseArgv(['status'], TABLE).options.output, 'text');
  assert.equal(parseArgv(['rbac'], TABLE).options.output, 'yaml', 'a command default output is its first');
  assert.equal((parseArgv(['dashboard', '--no-open'], TABLE).options as Record<string, unknown>).noOpen, true);
  assert.equal((parseArgv(['clean', '--dry-run=true', '--local=false'], TABLE).options as Record<string, unknown>).local, false);
});

test('bad command lines fail with the right code', () => {
  const cases: [string[], ErrorCode][] = [
    [['conect'], 'KT_ERR_UNKNOWN_COMMAND'],
    [['connect', '--sock-port', '1'], 'KT_ERR_UNKNOWN_FLAG'],
    [['--mode', 'route', 'connect'], 'KT_ERR_UNKNOWN_FLAG'],
    [['connect', '--socks-port'], 'KT_ERR_MISSING_FLAG_VALUE'],
    [['connect', '--socks-port', '--', 'x'], 'KT_ERR_MISSING_FLAG_VALUE'],
    [['connect', '--socks-port', '0'], 'KT_ERR_BAD_VALUE'],
    [['connect', '--socks-port', '65536'], 'KT_ERR_BAD_VALUE'],
    [['connect', '--mode', 'tun'], 'KT_ERR_BAD_VALUE'],
    [['connect', 'extra'], 'KT_ERR_TOO_MANY_ARGUMENTS'],
    [['status', '--', 'x'], 'KT_ERR_TOO_MANY_ARGUMENTS'],
    [['exchange', '--expose', '8080'], 'KT_ERR_MISSING_ARGUMENT'],
    [['exchange', 'svc/web'], 'KT_ERR_MISSING_FLAG'],
    [['exchange', 'pod/web', '--expose', '1'], 'KT_ERR_BAD_VALUE'],
    [['exchange', 'svc/web', '--expose', '8080:80,9090:80'], 'KT_ERR_BAD_VALUE'],
    [['exchange', 'svc/web', '--expose', '8080:80', '--expose', '9090:80'], 'KT_ERR_BAD_VALUE'],
    [['preview', 'web', '--expose', '80', '--expose', '80'], 'KT_ERR_BAD_VALUE'],
    [['mesh', 'svc/web', '--expose', '1', '--header', 'novalue'], 'KT_ERR_BAD_VALUE'],
    [['recover', 'deploy/web'], 'KT_ERR_BAD_VALUE'],
    [['forward', 'svc/db', '5432:abc'], 'KT_ERR_BAD_VALUE'],
    [['completion', 'powershell'], 'KT_ERR_BAD_VALUE'],
    [['help', 'nope'], 'KT_ERR_UNKNOWN_COMMAND'],
    [['-n', 'Bad_NS', 'status'], 'KT_ERR_BAD_VALUE'],
    [['dashboard', '-o', 'json'], 'KT_ERR_BAD_VALUE'],
    [['version', '-o', 'xml'], 'KT_ERR_BAD_VALUE'],
    [['--debug=maybe', 'version'], 'KT_ERR_BAD_VALUE'],
  ];
  for (const [argv, code] of cases) assert.equal(parseError(argv), code, argv.join(' '));
});

test('a --header regex the router could not run fails before any cluster call (no kubeconfig needed)', async () => {
  for (const re of ['x~=(', 'x~=(a)\\1']) {
    const r = await kt(['mesh', 'svc/web', '--expose', '1', '--header', re], { KUBECONFIG: '/nonexistent/kubeconfig' });
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /KT_ERR_BAD_VALUE/);
  }
});

test('usage errors: exit 2, one line naming the fix, and a suggestion when close', async () => {
  const r = await kt(['conect']);
  assertFails(r, 'KT_ERR_UNKNOWN_COMMAND', 2);
  assert.equal(r.err, 'error KT_ERR_UNKNOWN_COMMAND: unknown command "conect"; did you mean "connect"? — run `kubectl kt --help` for the list of commands\n');
  const f = await kt(['exchange', 'svc/web', '--expose', '8080', '--mod', 'scale']);
  assertFails(f, 'KT_ERR_UNKNOWN_FLAG', 2);
  assert.match(f.err, /unknown flag --mod for "exchange"; did you mean "--mode"\? — run `kubectl kt exchange --help` to see the flags/);
  // Node itself takes --env-file (nodejs/node#54232); where it lets it through, we point at ours.
  const e = await kt(['exchange', 'svc/web', '--expose', '8080', '--env-file', 'web.env']);
  assertFails(e, 'KT_ERR_UNKNOWN_FLAG', 2);
  assert.match(e.err, /unknown flag --env-file for "exchange"; did you mean "--env-out"\?/);
  const p = await kt(['connect', '--socks-port', '70000']);
  assertFails(p, 'KT_ERR_BAD_VALUE', 2);
  assert.match(p.err, /^error KT_ERR_BAD_VALUE: invalid --socks-port "70000": a port is a whole number from 1 to 65535 — /);
  const x = await kt(['exchange', 'svc/web', '--expose', '8080:99999']);
  assert.match(x.err, /invalid --expose "8080:99999": "99999" is not a port/);
  assert.equal((await kt(['xyzzy'])).err.includes('did you mean'), false, 'no suggestion when nothing is close');
});

test('suggest: unique prefix or at most two edits', () => {
  assert.equal(suggest('conect', names), 'connect');
  assert.equal(suggest('stat', names), 'status');
  assert.equal(suggest('exchnage', names), 'exchange');
  assert.equal(suggest('co', names), undefined, 'connect/completion: ambiguous prefix, too far');
  assert.equal(suggest('zzzzzz', names), undefined);
});

test('version: text and json, no cluster needed', async () => {
  const t = await kt(['version'], {});
  assert.equal(t.code, 0, t.err);
  assert.equal(t.out, `kubectl-kt ${VERSION}\nproxy image: ${DEFAULT_IMAGE}\nprotocol:    ${PROTOCOL_VERSION}\nnode:        ${process.version}\n`);
  const j = await kt(['version', '-o', 'json', '--image', 'registry.local/kt:dev']);
  assert.deepEqual(JSON.parse(j.out), { plugin: VERSION, image: 'registry.local/kt:dev', protocol: PROTOCOL_VERSION, node: process.version });
  const y = await kt(['-o', 'yaml', 'version']);
  assert.match(y.out, /^plugin: /m);
});

test('rbac: a namespaced Role with the rights commands need, and a RoleBinding for the subjects', async () => {
  const r = await kt(['rbac', '-n', 'shop', '--user', 'alice', '--group', 'devs', '--serviceaccount', 'ci:bot',
    '--serviceaccount', 'me', '-o', 'json']);
  assert.equal(r.code, 0, r.err);
  const list = JSON.parse(r.out) as { kind: string; items: Record<string, unknown>[] };
  assert.equal(list.kind, 'List');
  const [role, binding] = list.items as [{ kind: string; metadata: { namespace: string }; rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] }, { kind: string; subjects: unknown[]; roleRef: { name: string } }];
  assert.equal(role.kind, 'Role', 'namespaced, never a ClusterRole');
  assert.equal(role.metadata.namespace, 'shop');
  const allows = (group: string, resource: string, verb: string) =>
    role.rules.some((rule) => rule.apiGroups.includes(group) && rule.resources.includes(resource) && rule.verbs.includes(verb));
  for (const [g, res, verbs] of [
    ['', 'pods', 'create get list watch delete patch'], ['', 'pods/portforward', 'create'], ['', 'pods/log', 'get'],
    ['', 'services', 'get list watch create update patch delete'], ['', 'endpoints', 'get list watch'],
    ['apps', 'deployments', 'get list watch patch update'], ['apps', 'replicasets', 'get list watch patch update'],
    ['apps', 'deployments/scale', 'get update patch'], ['', 'configmaps', 'get'], ['', 'secrets', 'get'], ['', 'events', 'list'],
  ] as const) {
    for (const v of verbs.split(' ')) assert.ok(allows(g, res, v), `${v} ${res}`);
  }
  assert.ok(!allows('', 'secrets', 'list'), 'secrets: get only');
  assert.ok(!role.rules.some((rule) => rule.verbs.includes('*') || rule.resources.includes('*')));
  assert.equal(binding.kind, 'RoleBinding');
  assert.equal(binding.roleRef.name, 'kubectl-kt');
  assert.deepEqual(binding.subjects, [
    { kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'alice' },
    { kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'devs' },
    { kind: 'ServiceAccount', name: 'bot', namespace: 'ci' },
    { kind: 'ServiceAccount', name: 'me', namespace: 'shop' },
  ]);
  const noSubjects = await kt(['rbac', '-n', 'shop']);
  assert.match(noSubjects.out, /^kind: List\n/m);
  assert.match(noSubjects.out, /kind: Role\n/);
  assert.doesNotMatch(noSubjects.out, /RoleBinding/);
});

test('rbac takes its namespace from the kubeconfig context when -n is absent, and fails without one', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kt-cli-'));
  try {
    const cfg = join(dir, 'config');
    await writeFile(cfg, 'current-context: c\ncontexts: [{name: c, context: {cluster: k, namespace: from-ctx}}]\nclusters: [{name: k, cluster: {server: "https://k"}}]\n');
    const r = await kt(['rbac', '-o', 'json'], { KUBECONFIG: cfg });
    assert.equal(r.code, 0, r.err);
    assert.equal(JSON.parse(r.out).items[0].metadata.namespace, 'from-ctx');
    const viaFlag = await kt(['rbac', '-o', 'json', '--kubeconfig', cfg], { HOME: dir });
    assert.equal(JSON.parse(viaFlag.out).items[0].metadata.namespace, 'from-ctx');
    assertFails(await kt(['rbac'], { HOME: dir }), 'KT_ERR_KUBECONFIG_NOT_FOUND', 1);
    assertFails(await kt(['rbac', '--context', 'other'], { KUBECONFIG: cfg }), 'KT_ERR_KUBECONFIG_BAD_CONTEXT', 1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an unexpected error says --debug, and shows the stack only with --debug', async () => {
  const boom = {
    ...TABLE,
    loaders: { ...TABLE.loaders, version: async () => ({ run: async () => { throw new RangeError('kaboom'); } }) },
  };
  const base = (sink: { out: string; err: string }) => ({
    out: { write: (s: string) => (sink.out += s) },
    err: { write: (s: string) => (sink.err += s) },
    env: {}, signal: new AbortController().signal, clock: { now: () => 0 },
  });
  const plain = { out: '', err: '' };
  assert.equal(await run(['version'], base(plain), boom), 1);
  assert.equal(plain.err, 'error KT_ERR_INTERNAL: kaboom — run again with --debug for details, and report it with that output\n');
  const debug = { out: '', err: '' };
  assert.equal(await run(['version', '--debug'], base(debug), boom), 1);
  assert.match(debug.err, /^error KT_ERR_INTERNAL: kaboom — .*\nKtError: kaboom\n\s+at /);
  assert.match(debug.err, /caused by: RangeError: kaboom\n\s+at /);
});
