// Placeholder entry until the CLI frame lands (issue 2, part 2): it refuses
// every command with a non-zero exit rather than pretending to work.
import { VERSION } from '../../proxy-image/src/protocol/index.ts';

const args = process.argv.slice(2);
if (args[0] === 'version') {
  process.stdout.write(`kubectl-kt ${VERSION}\n`);
} else {
  process.stderr.write('KT_ERR_NOT_IMPLEMENTED: the CLI frame is not built yet\n');
  process.exitCode = 2;
}
