// The router's /routes answer read through a tunnelled stream: a plain
// Duplex (as an SSH channel is), not a net.Socket.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { Duplex } from 'node:stream';
import { test } from 'node:test';
import { routerAnswer } from '../../plugin/src/session/router-answer.ts';

async function serve(status: number, body: string): Promise<Server> {
  const srv = createServer((req, res) => {
    res.writeHead(req.url === '/routes' ? status : 404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return srv;
}

/** dial() as a session has it: a Duplex that is not a socket, over a TCP connection to the port. */
function dialer(): { dial(host: string, port: number): Promise<Duplex> } {
  return {
    dial: (host, port) => new Promise((resolve, reject) => {
      const sock = connect(port, host, () => {
        const d = new Duplex({
          read() {
            sock.resume();
          },
          write(chunk, _enc, cb) {
            sock.write(chunk, cb);
          },
          final(cb) {
            sock.end();
            cb();
          },
          destroy(err, cb) {
            sock.destroy();
            cb(err);
          },
        });
        sock.on('data', (c) => {
          if (!d.push(c)) sock.pause();
        });
        sock.on('end', () => d.push(null));
        resolve(d);
      });
      sock.once('error', reject);
    }),
  };
}

test('routerAnswer: the JSON of GET /routes, through a stream that is not a socket', async () => {
  const srv = await serve(200, JSON.stringify({ routes: [{ session: 'abc', servicePort: 80 }], windowSeconds: 60, ports: [] }) + '\n');
  try {
    const a = await routerAnswer(dialer(), (srv.address() as AddressInfo).port);
    assert.deepEqual(a.routes, [{ session: 'abc', servicePort: 80 }]);
    assert.equal(a.windowSeconds, 60);
  } finally {
    srv.close();
  }
});

test('routerAnswer: a status other than 200 is an error naming it', async () => {
  const srv = await serve(503, 'draining\n');
  try {
    await assert.rejects(routerAnswer(dialer(), (srv.address() as AddressInfo).port), /router answered 503/);
  } finally {
    srv.close();
  }
});
