/**
 * The demo container: a little of everything a real container holds, with the
 * default thresholds, so `npm start` shows both copy paths, every blob kind, and
 * blobs that are skipped or failed with their reasons.
 */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ContainerClient } from '@azure/storage-blob';
import { destinationKey } from '../core/keys';
import { digestOf, patternStream, uploadBlob, uploadDirectoryMarker, type BlobSpec } from './seed';

export const DEMO_CONTAINER = 'demo';
export const DEMO_BUCKET = 'azs3copy-demo';
const MiB = 1024 * 1024;

export type DemoBlob = BlobSpec & { expect: 'copied' | 'skipped' | 'failed' };

export const DEMO_BLOBS: DemoBlob[] = [
  {
    name: 'reports/2024/summary.html', size: 4096, expect: 'copied',
    headers: { blobContentType: 'text/html; charset=utf-8', blobCacheControl: 'max-age=300', blobContentLanguage: 'en' },
    metadata: { department: 'finance' }, tags: { project: 'demo' },
  },
  { name: 'reports/2024/data.csv.gz', size: 70_000, expect: 'copied', headers: { blobContentType: 'text/csv', blobContentEncoding: 'gzip', blobContentDisposition: 'attachment; filename="data.csv"' } },
  { name: 'names/with space & plus+sign.txt', size: 12, expect: 'copied' },
  { name: 'names/percent%20not-decoded#hash?query.txt', size: 12, expect: 'copied' },
  { name: "names/quotes 'single' \"double\".txt", size: 12, expect: 'copied' },
  { name: 'names/ünïcödé/日本語/😀.txt', size: 12, expect: 'copied' },
  { name: 'names/.leading-dot', size: 12, expect: 'copied' },
  { name: 'names/ leading-space', size: 12, expect: 'copied' },
  { name: `names/${'deep/'.repeat(30)}leaf.txt`, size: 12, expect: 'copied' },
  { name: 'empty.txt', size: 0, expect: 'copied' },
  ...Array.from({ length: 24 }, (_, i): DemoBlob => ({ name: `small/file-${String(i).padStart(3, '0')}.bin`, size: 1000 + i * 37_000, expect: 'copied' })),
  { name: 'disks/page-blob.vhd', size: 2 * MiB, kind: 'page', expect: 'copied' },
  { name: 'logs/append-blob.log', size: 300_000, kind: 'append', expect: 'copied' },
  { name: 'large/video.mp4', size: 150 * MiB + 12_345, expect: 'copied', singleShot: false, headers: { blobContentType: 'video/mp4' } },
  { name: 'large/backup.tar', size: 100 * MiB, expect: 'copied', singleShot: false },
  { name: 'cold/archived.bin', size: 1000, tier: 'Archive', expect: 'skipped' },
  { name: `too-long/${'n'.repeat(1020)}`, size: 10, expect: 'failed' },
];

export const DEMO_FOLDER_MARKER = 'reports';

export async function seedDemo(container: ContainerClient): Promise<void> {
  await container.createIfNotExists();
  for (const blob of DEMO_BLOBS) await uploadBlob(container, blob);
  await uploadDirectoryMarker(container, DEMO_FOLDER_MARKER);
}

/** Read every copy back and compare its SHA-256 with the bytes the seed wrote. */
export async function verifyCopies(client: S3Client, bucket: string, prefix: string, copied: string[], specs: BlobSpec[] = DEMO_BLOBS) {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const mismatches: { name: string; problem: string }[] = [];
  let checked = 0;
  for (const name of copied) {
    const spec = byName.get(name);
    if (!spec) continue;
    const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: destinationKey(prefix, name) }));
    const [got, want] = await Promise.all([
      digestOf(object.Body as NodeJS.ReadableStream),
      digestOf(patternStream(spec.seed ?? spec.name, spec.size)),
    ]);
    checked++;
    if (got.digest !== want.digest) mismatches.push({ name, problem: `sha256 ${got.digest} (${got.bytes} bytes), expected ${want.digest} (${want.bytes})` });
  }
  return { checked, mismatches };
}
