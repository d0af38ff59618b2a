/**
 * Which blobs a run takes: include and exclude globs on the blob's name, and a size
 * range. `*` matches within one path segment, `**` across segments (any number of
 * them, none included), `?` one character that is not `/`; excludes win. A blob
 * left out by a filter is counted, not listed one by one.
 */
import * as z from 'zod';

export const FiltersSchema = z.object({
  include: z.array(z.string().min(1)).optional(),
  exclude: z.array(z.string().min(1)).optional(),
  /** Bytes, inclusive. */
  minSize: z.number().int().nonnegative().optional(),
  maxSize: z.number().int().nonnegative().optional(),
});
export type Filters = z.infer<typeof FiltersSchema>;

/** A glob as a regular expression over the whole name. */
export function globRegExp(glob: string): RegExp {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      i++;
      // `**/` also matches nothing at all, so `a/**/b` takes `a/b`.
      if (glob[i + 1] === '/') {
        i++;
        out += '(?:.*/)?';
      } else {
        out += '.*';
      }
    } else if (c === '*') {
      out += '[^/]*';
    } else if (c === '?') {
      out += '[^/]';
    } else {
      out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${out}$`, 's');
}

export interface CompiledFilters {
  /** True when the blob is in the run's scope. */
  takes(name: string, size: number): boolean;
  /** Whether any filter is set. */
  active: boolean;
}

export function compileFilters(filters: Filters | undefined): CompiledFilters {
  const include = (filters?.include ?? []).map(globRegExp);
  const exclude = (filters?.exclude ?? []).map(globRegExp);
  const { minSize, maxSize } = filters ?? {};
  return {
    active: include.length > 0 || exclude.length > 0 || minSize !== undefined || maxSize !== undefined,
    takes(name, size) {
      if (minSize !== undefined && size < minSize) return false;
      if (maxSize !== undefined && size > maxSize) return false;
      if (exclude.some((re) => re.test(name))) return false;
      return include.length === 0 || include.some((re) => re.test(name));
    },
  };
}

/** A size such as `500`, `64K`, `10M`, `2G`, `1T` (binary multiples), as bytes; undefined when it is not one. */
export function parseSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$/i.exec(text);
  if (!m) return undefined;
  const power = ' kmgt'.indexOf(m[2].toLowerCase() || ' ');
  const bytes = Number(m[1]) * 1024 ** power;
  return Number.isSafeInteger(Math.round(bytes)) ? Math.round(bytes) : undefined;
}
