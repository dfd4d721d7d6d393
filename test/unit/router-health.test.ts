// The router's health and status endpoint (proxy-image/src/router/health.ts),
// asked by node's HTTP client as the plugin asks it, and by a raw socket.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { startHealth } from '../../proxy-image/src/router/health.ts';

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('health: /healthz follows ready(), /routes answers the routes as JSON, other paths 404 and other methods 405', async () => {
  let ready = false;
  const h = await startHealth('127.0.0.1', 0, () => ready, () => [], () => ({ windowSeconds: 60, ports: [{ servicePort: 80, requests: 3, untagged: 2 }] }));
  try {
    assert.equal((await get(h.port, '/healthz')).status, 503);
    ready = true;
    assert.deepEqual(await get(h.port, '/healthz?probe=1'), { status: 200, type: 'text/plain', body: 'ok\n' });
    const routes = await get(h.port, '/routes');
    assert.equal(routes.type, 'application/json');
    assert.deepEqual(JSON.parse(routes.body), { routes: [], windowSeconds: 60, ports: [{ servicePort: 80, requests: 3, untagged: 2 }] });
    assert.equal((await get(h.port, '/')).status, 404);
    assert.equal((await get(h.port, '/healthz', 'POST')).status, 405);
  } finally {
    await h.close();
  }
});

test('health: a request head split over many writes is answered once it is whole; an endless head gets 431 and the connection closes', async () => {
  const h = await startHealth('127.0.0.1', 0, () => true, () => []);
  try {
    const answer = (chunks: string[]) =>
      new Promise<string>((resolve, reject) => {
        const sock = net.connect(h.port, '127.0.0.1', () => {
          for (const c of chunks) sock.write(c);
        });
        let got = '';
        sock.setEncoding('latin1');
        sock.on('data', (d: string) => (got += d));
        sock.on('close', () => resolve(got));
        sock.on('error', reject);
      });
    const split = await answer(['GE', 'T /heal', 'thz HTTP/1.1\r\nHo', 'st: router\r\n', '\r\n']);
    assert.match(split, /^HTTP\/1\.1 200 OK\r\n[^]*connection: close\r\n\r\nok\n$/);
    const endless = await answer(['GET /healthz HTTP/1.1\r\n', ...Array.from({ length: 20 }, (_, i) => `x-filler-${i}: ${'a'.repeat(1000)}\r\n`)]);
    assert.match(endless, /^HTTP\/1\.1 431 /);
  } finally {
    await h.close();
  }
});
