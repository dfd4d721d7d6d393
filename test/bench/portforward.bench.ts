// Port-forward throughput of the streaming handlers alone: 256 MiB through
// @kubernetes/client-node's WebSocket port-forward (local listener → one
// WebSocket per connection → the API server's handler → a TCP sink), against
// the same 256 MiB written straight to the sink. The API server and the sink
// run in a child process, the client here, so both paths cross a process
// boundary and the difference is the WebSocket hop and its framing.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { KubeConfig, PortForward } from '@kubernetes/client-node';
import type WebSocket from 'ws';
import { SINK_PORT, pattern } from '../cluster/streams-harness.ts';
import type { BenchRow } from './run.ts';

const MIB = 1024 * 1024;
const SIZE = 256 * MIB;
const RUNS = 2;

const harnessUrl = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), '../cluster/streams-harness.ts')).href;
const SERVER = `
import { startHarness, SINK_PORT } from ${JSON.stringify(harnessUrl)};
const h = await startHarness({ onSink: (n) => process.stdout.write('sink ' + n + '\\n') });
process.stdout.write(JSON.stringify({ url: h.url, sinkPort: h.localPort(SINK_PORT) }) + '\\n');
process.stdin.on('end', () => h.close().then(() => process.exit(0)));
process.stdin.resume();
`;

/** Writes SIZE bytes to a fresh connection with backpressure, ends it, and waits until the sink has counted them all. */
async function push(port: number, nextSink: () => Promise<number>): Promise<number> {
  const chunk = pattern(MIB, 3);
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  const t0 = performance.now();
  const done = nextSink();
  for (let sent = 0; sent < SIZE; sent += MIB) {
    if (!socket.write(chunk)) await once(socket, 'drain');
  }
  socket.end();
  const got = await done;
  const seconds = (performance.now() - t0) / 1000;
  socket.destroy();
  if (got !== SIZE) throw new Error(`sink counted ${got} bytes, expected ${SIZE}`);
  return SIZE / MIB / seconds;
}

export async function run(): Promise<BenchRow[]> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', SERVER], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const sinks: number[] = [];
  const sinkWaiters: ((n: number) => void)[] = [];
  let ready!: (info: { url: string; sinkPort: number }) => void;
  const info = new Promise<{ url: string; sinkPort: number }>((r) => (ready = r));
  lines.on('line', (line) => {
    if (line.startsWith('sink ')) {
      const n = Number(line.slice(5));
      const w = sinkWaiters.shift();
      if (w) w(n);
      else sinks.push(n);
    } else if (line.startsWith('{')) ready(JSON.parse(line) as { url: string; sinkPort: number });
  });
  const nextSink = (): Promise<number> => (sinks.length > 0 ? Promise.resolve(sinks.shift()!) : new Promise((r) => sinkWaiters.push(r)));
  const exited = once(child, 'exit');

  const { url, sinkPort } = await Promise.race([info, exited.then(() => Promise.reject(new Error('bench API server exited early')))]);
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'bench', server: url, skipTLSVerify: true }],
    users: [{ name: 'bench' }],
    contexts: [{ name: 'bench', cluster: 'bench', user: 'bench' }],
    currentContext: 'bench',
  });
  const pf = new PortForward(kc);
  const local = net.createServer(async (socket) => {
    socket.on('error', () => {});
    try {
      const ws = (await pf.portForward('bench', 'sink', [SINK_PORT], socket, null, socket)) as WebSocket;
      ws.on('close', () => socket.destroy());
    } catch {
      socket.destroy();
    }
  });
  local.listen(0, '127.0.0.1');
  await once(local, 'listening');
  const localPort = (local.address() as net.AddressInfo).port;

  try {
    const forwarded: number[] = [];
    const direct: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      forwarded.push(await push(localPort, nextSink));
      direct.push(await push(sinkPort, nextSink));
    }
    return [
      {
        name: `streams: 256 MiB via client-node WebSocket port-forward (best of ${RUNS})`,
        value: Math.max(...forwarded),
        unit: 'MiB/s',
        reference: 'direct TCP to the same sink',
        refValue: Math.max(...direct),
        note: 'API server handler and sink in one child process; client-node and the writer in the bench process; loopback only',
      },
    ];
  } finally {
    await new Promise<void>((r) => local.close(() => r()));
    child.stdin!.end();
    await exited;
  }
}
