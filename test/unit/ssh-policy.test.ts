// Pure decisions of the SSH server, without sockets: which channel types and
// global requests it serves, who may log in, where it may listen.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import ssh2 from 'ssh2';
import type { AuthContext, ParsedKey } from 'ssh2';
import { SSH_REQUESTS, SSH_USER } from '../../contract/protocol.ts';
import { decideAuth } from '../../proxy-image/src/ssh/auth.ts';
import { decodeHello, encodeHello } from '../../contract/ssh/hello.ts';
import { generateEd25519 } from '../../contract/ssh/keys.ts';
import { isLoopbackHost, parseAuthorizedKeys } from '../../proxy-image/src/ssh/index.ts';
import { CHANNEL_HANDLERS, REQUEST_HANDLERS, channelHandler, requestHandler } from '../../proxy-image/src/ssh/policy.ts';
import { listenHost } from '../../proxy-image/src/ssh/tcpip-forward.ts';

test('channel types: only direct-tcpip is served', () => {
  const table: Array<[string, boolean]> = [
    ['direct-tcpip', true],
    ['session', false],
    ['x11', false],
    ['forwarded-tcpip', false],
    ['auth-agent@openssh.com', false],
    ['direct-streamlocal@openssh.com', false],
    ['tun@openssh.com', false],
    ['', false],
    ['__proto__', false],
    ['constructor', false],
    ['DIRECT-TCPIP', false],
  ];
  for (const [type, served] of table) assert.equal(channelHandler(type) !== undefined, served, type);
  assert.deepEqual([...CHANNEL_HANDLERS.keys()], ['direct-tcpip']);
});

test('global requests: only tcpip-forward, cancel-tcpip-forward and hello are served', () => {
  const table: Array<[string, boolean]> = [
    ['tcpip-forward', true],
    ['cancel-tcpip-forward', true],
    [SSH_REQUESTS.hello, true],
    [SSH_REQUESTS.route, false],
    ['keepalive@openssh.com', false],
    ['no-more-sessions@openssh.com', false],
    ['streamlocal-forward@openssh.com', false],
    ['cancel-streamlocal-forward@openssh.com', false],
    ['hostkeys-prove-00@openssh.com', false],
    ['__proto__', false],
    ['toString', false],
  ];
  for (const [name, served] of table) assert.equal(requestHandler(name) !== undefined, served, name);
  assert.deepEqual([...REQUEST_HANDLERS.keys()].sort(), ['cancel-tcpip-forward', SSH_REQUESTS.hello, 'tcpip-forward'].sort());
});

function pkCtx(key: ParsedKey, over: Partial<{ username: string; blob: Buffer; signature: Buffer | undefined }> = {}): AuthContext {
  const blob = over.blob ?? randomBytes(64);
  return {
    username: over.username ?? SSH_USER,
    method: 'publickey',
    key: { algo: key.type, data: key.getPublicSSH() },
    blob,
    signature: 'signature' in over ? over.signature : key.sign(blob),
    hashAlgo: undefined,
  } as unknown as AuthContext;
}

test('authentication: listed key, right user, a signature that verifies — nothing less', () => {
  const listed = ssh2.utils.parseKey(generateEd25519().privateKey) as ParsedKey;
  const other = ssh2.utils.parseKey(generateEd25519().privateKey) as ParsedKey;
  const allowed = parseAuthorizedKeys([`${listed.type} ${listed.getPublicSSH().toString('base64')} test`]);
  const blob = randomBytes(64);
  const cases: Array<[string, AuthContext, string]> = [
    ['signed by the listed key', pkCtx(listed, { blob }), 'accept'],
    ['query without signature (RFC 4252 §7)', pkCtx(listed, { signature: undefined }), 'key-ok'],
    ['listed public key, signature by another key', pkCtx(listed, { blob, signature: other.sign(blob) }), 'reject'],
    ['listed key, signature over other data', pkCtx(listed, { blob, signature: listed.sign(randomBytes(64)) }), 'reject'],
    ['key not listed', pkCtx(other), 'reject'],
    ['wrong user', pkCtx(listed, { username: 'root' }), 'reject'],
    ['password', { username: SSH_USER, method: 'password', password: 'x' } as unknown as AuthContext, 'reject'],
    ['keyboard-interactive', { username: SSH_USER, method: 'keyboard-interactive' } as unknown as AuthContext, 'reject'],
    ['none', { username: SSH_USER, method: 'none' } as unknown as AuthContext, 'reject'],
  ];
  for (const [name, ctx, want] of cases) assert.equal(decideAuth(ctx, allowed).kind, want, name);
});

test('authorized keys: comments and blank lines skipped, anything unreadable is an error naming the line', () => {
  const { publicKey, privateKey } = generateEd25519();
  assert.equal(parseAuthorizedKeys(['# mine', '', publicKey, '  ']).length, 1);
  assert.throws(() => parseAuthorizedKeys([publicKey, 'ssh-ed25519 not-base64!']), /authorized key 2 /);
  assert.throws(() => parseAuthorizedKeys([privateKey]), /private key/);
});

test('generated ed25519 keys always read back (ssh2 writes a broken one about 1 in 250)', () => {
  for (let i = 0; i < 500; i++) {
    const { privateKey, publicKey } = generateEd25519();
    const priv = ssh2.utils.parseKey(privateKey);
    const pub = ssh2.utils.parseKey(publicKey);
    assert.ok(!(priv instanceof Error) && !(pub instanceof Error), `key ${i}`);
    assert.ok(priv.getPublicSSH().equals(pub.getPublicSSH()));
    assert.match(publicKey, /^ssh-ed25519 AAAA\S+ /);
  }
});

test('the SSH server may listen on loopback addresses only', () => {
  const table: Array<[string, boolean]> = [
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['::1', true],
    ['localhost', true],
    ['0.0.0.0', false],
    ['::', false],
    ['', false],
    ['10.0.0.1', false],
    ['127.0.0.1.example.com', false],
    ['1127.0.0.1', false],
    ['127.999.0.1', false],
  ];
  for (const [host, ok] of table) assert.equal(isLoopbackHost(host), ok, host);
});

test('tcpip-forward bind addresses follow RFC 4254 §7.1', () => {
  const table: Array<[string, string]> = [
    ['', '0.0.0.0'],
    ['0.0.0.0', '0.0.0.0'],
    ['*', '0.0.0.0'],
    ['localhost', '127.0.0.1'],
    ['127.0.0.1', '127.0.0.1'],
    ['10.1.2.3', '10.1.2.3'],
  ];
  for (const [asked, bound] of table) assert.equal(listenHost(asked), bound, asked);
});

test('hello payloads round-trip, and junk is not a hello', () => {
  const info = { version: '1.2.3', protocol: 1, role: 'shadow' };
  assert.deepEqual(decodeHello(encodeHello(info)), info);
  assert.equal(decodeHello(null), undefined);
  assert.equal(decodeHello(Buffer.from([0, 0, 0, 9, 1])), undefined);
  assert.equal(decodeHello(encodeHello({ version: 1 } as unknown as typeof info)), undefined);
});
