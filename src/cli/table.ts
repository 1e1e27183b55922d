/** One column of a table: its header and how to show a row's cell. */
export type Column<R> = [header: string, cell: (row: R) => unknown];

const show = (v: unknown) => (v === null || v === undefined || v === '' ? '-' : Array.isArray(v) ? v.join(' ') : String(v));

/** A plain-text table with aligned columns, for people; machines use --json. */
export function formatTable<R>(rows: R[], columns: Column<R>[]): string {
  if (!rows.length) return '(none)\n';
  const cells = rows.map((r) => columns.map(([, cell]) => show(cell(r))));
  const widths = columns.map(([h], i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (values: string[]) => values.map((c, i) => (i === values.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return `${[line(columns.map(([h]) => h.toUpperCase())), ...cells.map(line)].join('\n')}\n`;
}

/** `key: value` lines, keys aligned, for one object. */
export function formatFields(fields: Array<[string, unknown]>): string {
  const width = Math.max(...fields.map(([k]) => k.length));
  return `${fields.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${show(v)}`).join('\n')}\n`;
}
