/**
 * The record of a multipart upload in progress, kept in the bucket under the state
 * prefix. It is what makes the large-blob path idempotent: a second initializer
 * for the same blob version finds it and resumes the upload instead of starting
 * another, and a parter or recombinator of an abandoned upload can tell.
 */
import { createHash } from 'node:crypto';
import { STATE_PREFIX } from './keys';
import type { BlobRef } from './messages';
import type { StateObjects } from './stores/types';

export interface UploadManifest {
  v: 1;
  key: string;
  blob: BlobRef;
  uploadId: string;
  partCount: number;
  partBytes: number;
  runId: string;
  createdAt: string;
  /** Set once the upload is completed and its copy is being checked against the blob's Content-MD5. */
  phase?: 'verifying';
}

export function manifestKey(key: string): string {
  return `${STATE_PREFIX}uploads/${createHash('sha256').update(key, 'utf8').digest('hex')}.json`;
}

export function readManifest(sink: Pick<StateObjects, 'getJson'>, key: string): Promise<UploadManifest | undefined> {
  return sink.getJson<UploadManifest>(manifestKey(key));
}

/** Forget the upload, but only if the manifest still names this one (another may have replaced it). */
export async function clearManifest(sink: Pick<StateObjects, 'getJson' | 'deleteState'>, key: string, uploadId: string): Promise<boolean> {
  const current = await readManifest(sink, key);
  if (current?.uploadId !== uploadId) return false;
  await sink.deleteState(manifestKey(key));
  return true;
}
