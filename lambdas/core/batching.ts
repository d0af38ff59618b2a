/**
 * Pack items into messages that stay under SNS's size limit and a count limit.
 */
import { MAX_MESSAGE_BYTES } from './messages';

export function packBySize<T>(
  items: T[],
  options: { maxItems: number; maxBytes?: number; weight?: (item: T) => number; maxWeight?: number; envelopeBytes?: number },
): T[][] {
  const maxBytes = options.maxBytes ?? MAX_MESSAGE_BYTES;
  const batches: T[][] = [];
  let current: T[] = [];
  let bytes = options.envelopeBytes ?? 2048;
  let weight = 0;
  for (const item of items) {
    const itemBytes = Buffer.byteLength(JSON.stringify(item), 'utf8') + 1;
    const itemWeight = options.weight?.(item) ?? 0;
    const full =
      current.length >= options.maxItems ||
      bytes + itemBytes > maxBytes ||
      (options.maxWeight !== undefined && current.length > 0 && weight + itemWeight > options.maxWeight);
    if (full && current.length > 0) {
      batches.push(current);
      current = [];
      bytes = options.envelopeBytes ?? 2048;
      weight = 0;
    }
    current.push(item);
    bytes += itemBytes;
    weight += itemWeight;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** Run `fn` over items with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
