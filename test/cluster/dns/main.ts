// The cluster DNS as a program, so the test cluster's node can run it as a
// pod process:
//   node test/cluster/dns/main.ts --api URL --listen HOST:PORT [--domain cluster.local] [--upstream HOST:PORT] [--debug]
// Prints `dns ready on HOST:PORT` once Services, Endpoints and Pods are
// listed and the port is open; exits 0 on SIGTERM/SIGINT.
import { parseArgs } from 'node:util';
import { startClusterDns, watchSource } from './server.ts';

function hostPort(flag: string, v: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(v);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`--${flag} ${JSON.stringify(v)}: expected HOST:PORT, e.g. 10.96.0.10:53\n`);
    process.exit(2);
  }
  return { host: m[1], port };
}

const { values } = parseArgs({
  options: {
    api: { type: 'string' },
    listen: { type: 'string' },
    domain: { type: 'string', default: 'cluster.local' },
    upstream: { type: 'string' },
    debug: { type: 'boolean', default: false },
  },
});
if (!values.api || !values.listen) {
  process.stderr.write('usage: main.ts --api URL --listen HOST:PORT [--domain cluster.local] [--upstream HOST:PORT] [--debug]\n');
  process.exit(2);
}
const listen = hostPort('listen', values.listen);
const debug = values.debug ? (m: string) => process.stderr.write(`${m}\n`) : undefined;
// A ServiceAccount token, from the pod's environment (a secretKeyRef), when the API asks for one.
const token = process.env.KT_API_TOKEN;
const source = watchSource(values.api, { debug, ...(token ? { token } : {}) });
await source.ready;
const dns = await startClusterDns({
  ...listen,
  domain: values.domain,
  source,
  ...(values.upstream ? { upstream: hostPort('upstream', values.upstream) } : {}),
  debug,
});
const shown = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
process.stdout.write(`dns ready on ${shown}:${dns.port}\n`);

const stop = async (): Promise<void> => {
  source.close();
  await dns.close();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
