// Asks a DNS server for a name until it answers, from inside a network
// namespace (`ip netns exec NS node dns-check.ts --server IP --name NAME`).
// Each try waits for the answer (the resolver's own timeout), so the loop has
// no sleeps: a server that is not up yet costs one timeout per try. Prints
// the addresses and exits 0, or exits 1 after --tries failures.
import { Resolver } from 'node:dns/promises';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { server: { type: 'string' }, name: { type: 'string' }, tries: { type: 'string', default: '60' } },
});
if (!values.server || !values.name) {
  process.stderr.write('usage: dns-check.ts --server IP --name NAME [--tries N]\n');
  process.exit(2);
}
const resolver = new Resolver({ timeout: 250, tries: 1 });
resolver.setServers([values.server]);
let last = '';
for (let i = 0; i < Number(values.tries); i++) {
  try {
    const addrs = await resolver.resolve4(values.name);
    process.stdout.write(`${addrs.join(' ')}\n`);
    process.exit(0);
  } catch (e) {
    last = (e as Error).message;
    // A refused or unreachable port fails at once; give the server a moment then.
    if (!/timeout|ETIMEOUT/i.test(last)) await new Promise((r) => setTimeout(r, 100));
  }
}
process.stderr.write(`no answer for ${values.name} from ${values.server}: ${last}\n`);
process.exit(1);
