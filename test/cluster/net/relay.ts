// A TCP → unix socket relay, run inside a network namespace
// (`ip netns exec NS node relay.ts --listen 127.0.0.1:P --to-unix SOCK`).
// Unix sockets are reachable from every network namespace, so this is how
// the API server (in the root namespace) appears at an address inside the
// laptop and node namespaces. Prints "listening HOST:PORT" once bound.
// The link emulator (link.ts) also relays TCP → TCP (`--to HOST:PORT`) and
// holds each direction's bytes for `--delay-ms` (delay.ts).
import { createConnection, createServer } from 'node:net';
import { parseArgs } from 'node:util';
import { splice } from './splice.ts';

export function splitHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  const port = Number(s.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`expected HOST:PORT, got ${s}`);
  return { host: s.slice(0, i), port };
}

function main(): void {
  const { values } = parseArgs({ options: { listen: { type: 'string' }, 'to-unix': { type: 'string' }, to: { type: 'string' }, 'delay-ms': { type: 'string' } } });
  const delayMs = Number(values['delay-ms'] ?? 0);
  if (!values.listen || !values['to-unix'] === !values.to || !(delayMs >= 0)) {
    process.stderr.write('usage: relay.ts --listen HOST:PORT (--to-unix SOCKET | --to HOST:PORT) [--delay-ms MS]\n');
    process.exit(2);
  }
  const unix = values['to-unix'];
  const to = values.to ? splitHostPort(values.to) : undefined;
  const { host, port } = splitHostPort(values.listen);
  const server = createServer({ noDelay: true }, (client) => {
    splice(client, unix ? createConnection(unix) : createConnection({ ...to!, noDelay: true }), { delayMs });
  });
  server.on('error', (e) => {
    process.stderr.write(`relay: ${e.message}\n`);
    process.exit(1);
  });
  server.listen(port, host, () => {
    const a = server.address();
    process.stdout.write(`listening ${host}:${typeof a === 'object' && a ? a.port : port}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
}

if (import.meta.main) main();
