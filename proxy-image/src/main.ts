// Role dispatch placeholder until the SSH/DNS core lands.
import { ENV, ROLES, VERSION } from './protocol/index.ts';

const role = process.env[ENV.role] ?? process.argv[2];
if (!role || !(ROLES as readonly string[]).includes(role)) {
  process.stderr.write(`kt-proxy ${VERSION}: unknown role ${JSON.stringify(role)}; set ${ENV.role} to one of ${ROLES.join(', ')}\n`);
  process.exit(2);
}
