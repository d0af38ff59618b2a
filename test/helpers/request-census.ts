/**
 * Requests as the stores receive them, named by service and operation: fed by a
 * fault proxy's `onRequest` (with no faults), it counts what a copy really sent,
 * independently of the copier's own meter. S3 requests on the run state kept in
 * the bucket (`.azs3copy-state/state/`) are counted apart, as `state`.
 */
import { BUCKET_STATE_PREFIX } from '../../lambdas/core/state/bucket-table';
import { addCounts, type RequestCounts } from '../../lambdas/core/cost/requests';
import type { ProxiedRequest, Service } from './fault-proxy';

export function operationOf(service: Service, r: ProxiedRequest): { service: string; op: string } {
  const q = (name: string) => r.query.has(name);
  if (service === 'azure') {
    if (r.query.get('comp') === 'list') return { service: 'azure', op: r.query.get('restype') === 'container' ? 'ListBlobs' : 'ListContainers' };
    if (r.method === 'HEAD') return { service: 'azure', op: 'GetBlobProperties' };
    if (r.method === 'GET') return { service: 'azure', op: r.query.get('comp') === 'tags' ? 'GetBlobTags' : 'GetBlob' };
    return { service: 'azure', op: `${r.method} ${r.query.get('comp') ?? ''}`.trim() };
  }
  // Path style: /bucket or /bucket/key.
  const [, , ...rest] = r.decodedPath.split('/');
  const key = rest.join('/');
  const onState = key.startsWith(BUCKET_STATE_PREFIX) || (r.query.get('prefix') ?? '').startsWith(BUCKET_STATE_PREFIX);
  const s = onState ? 'state' : 's3';
  const m = r.method;
  if (!key) {
    if (m === 'HEAD') return { service: s, op: 'HeadBucket' };
    if (m === 'GET' && q('uploads')) return { service: s, op: 'ListMultipartUploads' };
    if (m === 'GET') return { service: s, op: r.query.get('list-type') === '2' ? 'ListObjectsV2' : 'ListObjects' };
  }
  if (m === 'HEAD') return { service: s, op: 'HeadObject' };
  if (m === 'GET') return { service: s, op: q('uploadId') ? 'ListParts' : 'GetObject' };
  if (m === 'PUT') return { service: s, op: q('uploadId') ? 'UploadPart' : r.headers['x-amz-copy-source'] ? 'CopyObject' : 'PutObject' };
  if (m === 'POST') return { service: s, op: q('uploads') ? 'CreateMultipartUpload' : q('uploadId') ? 'CompleteMultipartUpload' : 'POST' };
  if (m === 'DELETE') return { service: s, op: q('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject' };
  return { service: s, op: m };
}

export function census(service: Service) {
  const counts: RequestCounts = {};
  return {
    counts,
    onRequest(r: ProxiedRequest) {
      const { service: svc, op } = operationOf(service, r);
      addCounts(counts, { [svc]: { [op]: 1 } });
    },
  };
}
