// Printing, kept apart from the commands: a command returns data, and this
// turns it into text, JSON or YAML. The error line is formed here too.
import { dump } from 'js-yaml';
import type { OutputFormat } from './args.ts';
import type { KtError } from './errors.ts';

export function toYaml(data: unknown): string {
  // noRefs: repeated objects are written out, not as YAML anchors kubectl users never see.
  return dump(data, { noRefs: true, lineWidth: -1, sortKeys: false });
}

/** The bytes to print for a command's result; nothing for `undefined`. */
export function render(data: unknown, format: OutputFormat, text?: (data: unknown) => string): string {
  if (data === undefined) return '';
  let s: string;
  if (format === 'json') s = JSON.stringify(data, null, 2);
  else if (format === 'yaml' || !text) s = typeof data === 'string' ? data : toYaml(data);
  else s = text(data);
  return s === '' || s.endsWith('\n') ? s : `${s}\n`;
}

/** `error KT_ERR_X: what happened — what to do`, one line. */
export function errorLine(e: KtError): string {
  const message = e.message.replace(/\s*\n\s*/g, ' ');
  return `error ${e.code}: ${message} — ${e.fix}\n`;
}

/** The stack of an error and of each cause, for --debug. */
export function debugDetails(e: unknown): string {
  const parts: string[] = [];
  let cur: unknown = e;
  for (let depth = 0; cur !== undefined && cur !== null && depth < 5; depth++) {
    parts.push(depth === 0 ? '' : 'caused by: ');
    parts.push(cur instanceof Error ? (cur.stack ?? `${cur.name}: ${cur.message}`) : String(cur));
    parts.push('\n');
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return parts.join('');
}
