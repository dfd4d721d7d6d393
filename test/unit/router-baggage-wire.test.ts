// Baggage routes on the router's real sockets: HTTP/1.1 keep-alive (several
// `baggage` lines in one request), h2c streams and gRPC metadata are each
// routed on the W3C baggage member; malformed baggage goes to origin, and
// /routes reports the counts of what the route saw.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import http2 from 'node:http2';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { bed, grpcBed, h2Who } from './router-fixtures.ts';
import { grpc } from '../fixtures/grpc/kt-echo.ts';
import type { Reply } from '../fixtures/grpc/kt-echo.ts';

const run = promisify(execFile);
const baggage = (key: string, value: string) => [{ baggage: key, value }];

test('HTTP/1.1 keep-alive: each request routed on its baggage, several lines read as one list; malformed goes to origin', async (t) => {
  const b = await bed(t);
  await b.dev('alice', { headers: baggage('kt', 'alice') });
  // curl sends each -H as its own line, in order; --next keeps the connection.
  const sets = [['baggage: kt=alice'], [], ['baggage: a=1', 'baggage: kt=alice;p'], ['baggage: kt=al%69ce'], ['baggage: kt=alice,bad'], ['baggage: kt=bob'], ['baggage: KT=alice']];
  const args: string[] = [];
  sets.forEach((hs, i) => {
    if (i > 0) args.push('--next');
    args.push('-sS', '-w', '%{num_connects}\\n');
    for (const h of hs) args.push('-H', h);
    args.push(`http://127.0.0.1:${b.port}/who`);
  });
  const { stdout } = await run('/usr/bin/curl', args);
  // Each answer is a JSON line, then curl's count of new connections for it.
  const lines = stdout.trim().split('\n');
  const pods = lines.filter((_, i) => i % 2 === 0).map((l) => (JSON.parse(l) as { pod: string }).pod);
  assert.deepEqual(pods, ['alice', 'origin-pod', 'alice', 'alice', 'origin-pod', 'origin-pod', 'origin-pod']);
  assert.deepEqual(lines.filter((_, i) => i % 2 === 1), ['1', '0', '0', '0', '0', '0', '0'], 'one connection for all');

  const routes = await new Promise<{ routes: { counts: unknown; headers: unknown }[]; ports: unknown; windowSeconds: number }>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: b.router.healthPort, path: '/routes' }, (res) => {
      let s = '';
      res.on('data', (d: Buffer) => (s += d.toString()));
      res.on('end', () => resolve(JSON.parse(s) as never));
    }).on('error', reject);
  });
  assert.deepEqual(routes.routes[0].headers, [{ baggage: 'kt', value: 'alice' }]);
  // kt=alice,bad is malformed: no member is read, so it counts as untagged; KT= is another key.
  assert.deepEqual(routes.routes[0].counts, { matched: 3, otherValue: 1, untagged: 3 });
  assert.deepEqual(routes.ports, [{ servicePort: 80, requests: 7, untagged: 3 }]);
  assert.equal(routes.windowSeconds, 60);
});

test('h2c streams are routed on baggage (several values of a stream read as one list)', async (t) => {
  const b = await bed(t);
  await b.dev('alice', { headers: baggage('kt', 'alice') });
  const session = http2.connect(`http://127.0.0.1:${b.port}`);
  t.after(() => session.destroy());
  const get = async (headers: Record<string, string | string[]>): Promise<string> => (await h2Who(session, headers)).pod;
  const got = await Promise.all([get({ baggage: 'kt=alice' }), get({}), get({ baggage: ['x=1', 'kt=alice'] }), get({ baggage: 'kt=bob' })]);
  assert.deepEqual(got, ['alice', 'origin-pod', 'alice', 'origin-pod']);
});

test('gRPC metadata: a call with baggage kt=alice reaches her server, others the origin', async (t) => {
  const { client } = await grpcBed(t, baggage('kt', 'alice'));
  const who = (bag?: string) => new Promise<string>((resolve, reject) => {
    const md = new grpc.Metadata();
    if (bag) md.set('baggage', bag);
    client.Who({ text: 'x', n: 0 }, md, (err: grpc.ServiceError | null, r: Reply) => (err ? reject(err) : resolve(r.pod)));
  });
  assert.deepEqual(await Promise.all([who('kt=alice'), who(), who('userId=7, kt=alice;ttl=1'), who('kt=alice smith')]), ['alice-grpc', 'origin-grpc', 'alice-grpc', 'origin-grpc']);
});
