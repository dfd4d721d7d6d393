// `make bench`: runs every test/bench/*.bench.ts one after another (they
// compete for the same two cores otherwise) and prints one table.
import { readdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** One measured number next to the number it is judged against. */
export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  /** What the value is compared with ("OpenSSH ssh -L → sshd", "node -e 0"). */
  reference: string;
  refValue: number;
  /** ratio = value / refValue is computed by the runner. */
  note?: string;
}

interface BenchModule {
  run(): Promise<BenchRow[]>;
}

const here = dirname(fileURLToPath(import.meta.url));

function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2);
}

function table(rows: BenchRow[]): string {
  const head = ['name', 'value', 'unit', 'reference', 'ref value', 'ratio'];
  const body = rows.map((r) => [r.name, fmt(r.value), r.unit, r.reference, fmt(r.refValue), `${fmt(r.value / r.refValue)}×`]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 1 || i === 4 || i === 5 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)];
  const notes = rows.filter((r) => r.note).map((r) => `  ${r.name}: ${r.note}`);
  return [...out, ...(notes.length ? ['', 'notes:', ...notes] : [])].join('\n');
}

async function main(): Promise<void> {
  const only = process.argv[2];
  const files = readdirSync(here)
    .filter((f) => f.endsWith('.bench.ts') && (!only || f.includes(only)))
    .sort();
  const rows: BenchRow[] = [];
  let failed = false;
  for (const f of files) {
    process.stderr.write(`bench: ${f}\n`);
    try {
      const mod = (await import(pathToFileURL(join(here, f)).href)) as BenchModule;
      rows.push(...(await mod.run()));
    } catch (err) {
      failed = true;
      process.stderr.write(`bench: ${f} failed: ${(err as Error).stack ?? err}\n`);
    }
  }
  const cpu = cpus();
  process.stdout.write(`${table(rows)}\n\nmachine: node ${process.version}, ${cpu[0]?.model ?? 'unknown cpu'}, ${cpu.length} cores\n`);
  if (failed) process.exitCode = 1;
}

await main();
