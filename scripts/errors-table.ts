// Prints the README's error table (code · meaning · how to fix) from the
// error registry: `node scripts/errors-table.ts`.
import { EXIT_USAGE, errorTable } from '../plugin/src/errors.ts';

const cell = (s: string): string => s.replace(/\|/g, '\\|');

export function errorsMarkdown(): string {
  const rows = errorTable().map((e) =>
    `| \`${e.code}\` | ${cell(e.meaning)}${e.exit === EXIT_USAGE ? ' (exit 2)' : ''} | ${cell(e.fix)} |`);
  return ['| code | meaning | how to fix |', '|---|---|---|', ...rows, ''].join('\n');
}

if (import.meta.main) process.stdout.write(errorsMarkdown());
