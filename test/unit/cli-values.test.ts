import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkRegexHeaders } from '../../plugin/src/header-regex.ts';
import { isKtError } from '../../plugin/src/errors.ts';
import {
  parseDnsLabel, parseExpose, parseForwardTarget, parseHeader, parseNamespaces, parsePort, parsePortMapping,
  parseServiceAccount, parseWorkloadRef, parseBaggageMember, parseHeaderToAdd, parsePositiveSeconds,
} from '../../plugin/src/values.ts';

/** Asserts the exact KT_ERR_BAD_VALUE message. */
function refuses(fn: () => unknown, message: string): void {
  assert.throws(fn, (e) => isKtError(e) && e.code === 'KT_ERR_BAD_VALUE' && e.message === message);
}

test('ports: 1-65535 in plain decimal', () => {
  assert.equal(parsePort('1', '--p'), 1);
  assert.equal(parsePort('65535', '--p'), 65535);
  for (const bad of ['0', '65536', '-1', '08', '1e3', '80.0', ' 80', '', '0x50', '123456']) {
    refuses(() => parsePort(bad, '--p'), `invalid --p ${JSON.stringify(bad)}: a port is a whole number from 1 to 65535`);
  }
});

test('--expose LOCAL[:REMOTE][,...]', () => {
  assert.deepEqual(parseExpose('8080', 'e'), [{ local: 8080, remote: 8080 }]);
  assert.deepEqual(parseExpose('8080:80,9090', 'e'), [{ local: 8080, remote: 80 }, { local: 9090, remote: 9090 }]);
  refuses(() => parseExpose('8080:0', '--expose'), 'invalid --expose "8080:0": "0" is not a port: a port is a whole number from 1 to 65535');
  refuses(() => parseExpose('', '--expose'), 'invalid --expose "": expected LOCAL[:REMOTE][,...], for example 8080 or 8080:80,9090');
  refuses(() => parseExpose('1:2:3', '--expose'), 'invalid --expose "1:2:3": "1:2:3" is not LOCAL[:REMOTE] (example: 8080:80)');
  refuses(() => parseExpose('8080,', '--expose'), 'invalid --expose "8080,": "" is not LOCAL[:REMOTE] (example: 8080:80)');
  refuses(() => parseExpose('1:80,2:80', '--expose'), 'invalid --expose "1:80,2:80": remote port 80 is given twice');
});

test('forward ports: LOCAL:REMOTE or PORT', () => {
  assert.deepEqual(parsePortMapping('5432', 'ports'), { local: 5432, remote: 5432 });
  assert.deepEqual(parsePortMapping('15432:5432', 'ports'), { local: 15432, remote: 5432 });
  refuses(() => parsePortMapping(':80', 'ports'), 'invalid ports ":80": expected LOCAL:REMOTE or PORT, for example 5432:5432');
});

test('--header NAME=VALUE and NAME~=REGEX', () => {
  assert.deepEqual(parseHeader('X-Kt-Version=alice', 'h'), { name: 'x-kt-version', kind: 'exact', value: 'alice' });
  assert.deepEqual(parseHeader('x-user=a=b', 'h'), { name: 'x-user', kind: 'exact', value: 'a=b' }, 'splits at the first =');
  assert.deepEqual(parseHeader('x-user~=^(alice|bob)$', 'h'), { name: 'x-user', kind: 'regex', pattern: '^(alice|bob)$' });
  refuses(() => parseHeader('alice', '--header'), 'invalid --header "alice": expected NAME=VALUE or NAME~=REGEX, for example x-kt-version=alice');
  refuses(() => parseHeader('=v', '--header'), 'invalid --header "=v": expected NAME=VALUE or NAME~=REGEX, for example x-kt-version=alice');
  refuses(() => parseHeader('bad name=v', '--header'), 'invalid --header "bad name=v": "bad name" is not an HTTP header name');
  refuses(() => parseHeader('x=', '--header'), 'invalid --header "x=": the value is empty');
  refuses(() => parseHeader('x=a\r\nb', '--header'), 'invalid --header "x=a\\r\\nb": a header value cannot contain CR, LF or NUL');
});

test('--header regexes are checked against the router\'s RE2 engine: what it cannot run is KT_ERR_BAD_VALUE', async () => {
  const bad = async (raw: string, re: RegExp) =>
    assert.rejects(checkRegexHeaders([parseHeader(raw, '--header')]), (e) => isKtError(e) && e.code === 'KT_ERR_BAD_VALUE' && re.test(e.message), raw);
  await bad('x~=(', /not an RE2 regular expression/);
  for (const raw of ['x~=(a)\\1', 'x~=(?=a)a', 'x~=(?<!a)b']) await bad(raw, /backreferences and lookaround are not supported/);
  await bad(`x~=${'a'.repeat(257)}`, /longer than 256 characters/);
  // Nested stars are fine: RE2 runs them in linear time.
  await checkRegexHeaders([parseHeader('x~=(a*)*b', 'h'), parseHeader('y=exact', 'h')]);
});

test('--baggage KEY=VALUE (mesh, connect) and connect --header NAME=VALUE', () => {
  assert.deepEqual(parseBaggageMember('kt=alice', 'b'), { key: 'kt', value: 'alice' });
  assert.deepEqual(parseBaggageMember('kt=alice smith, ü;x=y', 'b'), { key: 'kt', value: 'alice smith, ü;x=y' }, 'the decoded value: anything printable');
  refuses(() => parseBaggageMember('alice', '--baggage'), 'invalid --baggage "alice": expected KEY=VALUE, for example kt=alice');
  refuses(() => parseBaggageMember('k t=a', '--baggage'), 'invalid --baggage "k t=a": "k t" is not a baggage key: letters, digits and !#$%&\'*+-.^_`|~ only, for example kt=alice');
  refuses(() => parseBaggageMember('kt=', '--baggage'), 'invalid --baggage "kt=": the value is empty, for example kt=alice');
  refuses(() => parseBaggageMember('kt=a\nb', '--baggage'), 'invalid --baggage "kt=a\\nb": a baggage value cannot contain control characters');
  assert.deepEqual(parseHeaderToAdd('X-Kt-Version=alice', 'h'), { name: 'x-kt-version', value: 'alice' });
  refuses(() => parseHeaderToAdd('x~=a', '--header'), 'invalid --header "x~=a": connect sets a header value; NAME~=REGEX is a mesh rule. Use NAME=VALUE, for example x-kt-version=alice');
  refuses(() => parseHeaderToAdd('Host=evil', '--header'), 'invalid --header "Host=evil": the proxy sets host itself; pick another header, for example x-kt-version=alice');
  refuses(() => parseHeaderToAdd('baggage=kt=a', '--header'), 'invalid --header "baggage=kt=a": use --baggage KEY=VALUE to add a baggage member (members are merged, not replaced)');
  assert.equal(parsePositiveSeconds('5', 'KT_COUNT_WINDOW_SECONDS'), 5);
  refuses(() => parsePositiveSeconds('0', 'KT_COUNT_WINDOW_SECONDS'), 'invalid KT_COUNT_WINDOW_SECONDS "0": expected a whole number of seconds from 1 to 999999, for example 60');
});

test('resource references: deploy/NAME, svc/NAME, bare NAME', () => {
  assert.deepEqual(parseWorkloadRef('deploy/web', 't'), { kind: 'deployment', name: 'web' });
  assert.deepEqual(parseWorkloadRef('deployments.apps/web.v2', 't'), { kind: 'deployment', name: 'web.v2' });
  assert.deepEqual(parseWorkloadRef('svc/web', 't'), { kind: 'service', name: 'web' });
  assert.deepEqual(parseWorkloadRef('Service/web', 't'), { kind: 'service', name: 'web' });
  assert.deepEqual(parseWorkloadRef('web', 't'), { name: 'web' });
  refuses(() => parseWorkloadRef('pod/web', 'target'), 'invalid target "pod/web": expected deploy/NAME, svc/NAME or NAME');
  refuses(() => parseWorkloadRef('deploy/web', 'service', ['service']), 'invalid service "deploy/web": expected svc/NAME or NAME');
  refuses(() => parseWorkloadRef('svc/web.v2', 'target'),
    'invalid target "svc/web.v2": a name is at most 63 lower-case letters, digits and "-", starting and ending with a letter or digit');
  refuses(() => parseWorkloadRef('svc/', 'target'),
    'invalid target "svc/": a name is at most 63 lower-case letters, digits and "-", starting and ending with a letter or digit');
  refuses(() => parseWorkloadRef(`svc/${'a'.repeat(64)}`, 'target'),
    `invalid target "svc/${'a'.repeat(64)}": a name is at most 63 lower-case letters, digits and "-", starting and ending with a letter or digit`);
  assert.equal(parseDnsLabel('a'.repeat(63), 'n'), 'a'.repeat(63));
  assert.deepEqual(parseNamespaces('a,b-2', 'n'), ['a', 'b-2']);
});

test('forward targets: svc/NAME, host names and IPs', () => {
  assert.deepEqual(parseForwardTarget('svc/db', 't'), { kind: 'service', name: 'db' });
  assert.deepEqual(parseForwardTarget('DB.Shop.svc.cluster.local.', 't'), { kind: 'host', host: 'db.shop.svc.cluster.local' });
  assert.deepEqual(parseForwardTarget('10.96.0.10', 't'), { kind: 'host', host: '10.96.0.10' });
  assert.deepEqual(parseForwardTarget('fd00::1', 't'), { kind: 'host', host: 'fd00::1' });
  refuses(() => parseForwardTarget('deploy/db', 'target'), 'invalid target "deploy/db": expected svc/NAME or NAME');
  refuses(() => parseForwardTarget('bad_host', 'target'),
    'invalid target "bad_host": expected svc/NAME, a host name (web.shop.svc.cluster.local) or an IP address');
});

test('service accounts: [NS:]NAME', () => {
  assert.deepEqual(parseServiceAccount('bot', 's'), { name: 'bot' });
  assert.deepEqual(parseServiceAccount('ci:bot', 's'), { namespace: 'ci', name: 'bot' });
  refuses(() => parseServiceAccount('a:b:c', '--serviceaccount'), 'invalid --serviceaccount "a:b:c": expected [NAMESPACE:]NAME');
});
