/**
 * Azure Blob Storage as a BlobSource. Every read is pinned to the ETag the blob
 * was listed with, so a blob that changes mid-copy is detected (412), never mixed.
 * A body cut mid-way is resumed from the byte it reached, under the same ETag.
 */
import type { TokenCredential } from '@azure/core-auth';
import type { PipelinePolicy } from '@azure/core-rest-pipeline';
import { BlobServiceClient, type StoragePipelineOptions } from '@azure/storage-blob';
import type { SourceConfig } from '../config';
import { numberFrom } from '../env';
import { registerSecret } from '../log';
import { BlobFailure, ConfigError, SourceChangedError, codeOf, errorMessage, statusOf } from '../errors';
import { webIdentityTokens, type AwsIdentity, type WebIdentityTokens } from './aws-web-identity';
import { explainFederatedRefusal, federatedCredential, federatedSignInFailed } from './azure-federation';
import { containerRequester, getBlob, headerOf, metadataOf, sharedTokenCredential } from './azure-get';
import { listBlobsPage } from './azure-list';
import { httpExchange } from './http-exchange';
import { resumableRead } from './resumable-read';
import type { BlobProperties, BlobRead, BlobSource, ByteRange } from './types';

export interface AzureSourceOptions {
  /** Tries per request, the first included, before the SDK gives up. */
  maxTries?: number;
  /** How often a body cut mid-stream is resumed from where it broke. */
  maxStreamResumes?: number;
  /** Told of something the user should know that does not stop the copy. */
  onWarning?: (message: string) => void;
  /** Time each request to the Entra ID authority has (default 30 s, or TOKEN_TIMEOUT_ENV). */
  tokenTimeoutMs?: number;
  /** The AWS identity a federated secret signs in to Azure as. @default the SDK's default credentials and region */
  aws?: AwsIdentity;
}

/** Entra ID in the public cloud, where the credential signs in unless told otherwise. */
const DEFAULT_AUTHORITY_HOST = 'https://login.microsoftonline.com';

/** How long one request to the Entra ID authority may take; the environment can shorten it (tests) or lengthen it. */
export const TOKEN_TIMEOUT_ENV = 'AZS3COPY_AZURE_TOKEN_TIMEOUT_MS';

/**
 * A token request that hangs must not hang the copy: each request the credential makes
 * gets its own deadline (an abort signal passed to getToken does not reach MSAL's requests).
 * It is an abort signal, not request.timeout: that one stops counting once the headers
 * arrive, so an answer whose body stalls would still hang for ever. And it is a plain
 * controller and timer: on Node 20 a signal from AbortSignal.any over AbortSignal.timeout
 * can be garbage-collected before it fires (measured: the hang then lasts for ever).
 */
function tokenRequestTimeout(timeoutMs: number): PipelinePolicy {
  return {
    name: 'azs3copyTokenTimeout',
    sendRequest(request, next) {
      const deadline = new AbortController();
      const caller = request.abortSignal;
      const forward = () => deadline.abort();
      if (caller?.aborted) deadline.abort();
      else caller?.addEventListener('abort', forward);
      request.abortSignal = deadline.signal;
      const timer = setTimeout(() => deadline.abort(), timeoutMs);
      return next(request).finally(() => {
        clearTimeout(timer);
        caller?.removeEventListener('abort', forward);
      });
    },
  };
}

/**
 * A credential made on its first use: @azure/identity (with MSAL, about 120 files) is loaded only by a source that
 * signs in to Entra ID, not by every copy with a connection string (about 0.2 s of each start).
 */
export function lazyCredential(make: () => Promise<TokenCredential>): TokenCredential {
  let made: Promise<TokenCredential> | undefined;
  return {
    async getToken(scopes, options) {
      made ??= make();
      return (await made).getToken(scopes, options);
    },
  };
}

/** Where the source signs in to Entra ID, to name it when that fails; none with a connection string. */
function signInOf(config: SourceConfig, options: AzureSourceOptions): SignIn | undefined {
  const { credentials } = config;
  if (credentials.kind === 'connection-string') return undefined;
  const signIn = { authority: credentials.authorityHost ?? DEFAULT_AUTHORITY_HOST, tenantId: credentials.tenantId, clientId: credentials.clientId };
  // Federated: one STS token source per Azure source, so its token is shared by all of the source's sign-ins.
  return credentials.kind === 'federated' ? { ...signIn, tokens: webIdentityTokens({ identity: options.aws }) } : signIn;
}

export function blobServiceClient(config: SourceConfig, options: AzureSourceOptions = {}, signIn = signInOf(config, options)): BlobServiceClient {
  const pipeline: StoragePipelineOptions = {
    retryOptions: { maxTries: options.maxTries ?? 6, retryDelayInMs: 500, maxRetryDelayInMs: 30_000 },
    userAgentOptions: { userAgentPrefix: 'azs3copy' },
  };
  const { credentials } = config;
  if (credentials.kind === 'connection-string') {
    registerSecret(credentials.connectionString);
    try {
      return BlobServiceClient.fromConnectionString(credentials.connectionString, pipeline);
    } catch (error) {
      throw new ConfigError(
        `the Azure connection string cannot be used (${errorMessage(error)}): copy it whole from the storage account's "Access keys" page`,
      );
    }
  }
  const identityOptions = {
    authorityHost: credentials.authorityHost,
    // Instance discovery calls the public cloud; with a custom authority it must be skipped.
    disableInstanceDiscovery: credentials.authorityHost !== undefined,
    additionalPolicies: [{ policy: tokenRequestTimeout(options.tokenTimeoutMs ?? numberFrom(TOKEN_TIMEOUT_ENV, 30_000)), position: 'perCall' as const }],
    retryOptions: { maxRetries: 2 },
  };
  let credential: TokenCredential;
  if (credentials.kind === 'federated') {
    credential = federatedCredential(credentials, signIn!.tokens!, identityOptions, (error) => explainSignIn(error, signIn));
  } else {
    registerSecret(credentials.clientSecret);
    const { tenantId, clientId, clientSecret } = credentials;
    credential = lazyCredential(async () => new (await import('@azure/identity')).ClientSecretCredential(tenantId, clientId, clientSecret, identityOptions));
  }
  credential = sharedTokenCredential(credential);
  const endpoint = config.blobEndpoint ?? `https://${config.account}.blob.core.windows.net`;
  return new BlobServiceClient(endpoint, credential, pipeline);
}

/**
 * Every container of the account but the system ones (`$logs`, `$web`, `$root`...), for `--all-containers`
 * and a secret's `"container": "*"`. Listing containers is an account-level permission.
 */
export async function listContainers(config: SourceConfig, options: AzureSourceOptions = {}): Promise<string[]> {
  const service = blobServiceClient(config, options);
  const names: string[] = [];
  try {
    for await (const item of service.listContainers()) if (!item.name.startsWith('$')) names.push(item.name);
  } catch (error) {
    if (statusOf(error) === 403) {
      throw new ConfigError(
        `Azure refused to list the containers of storage account "${config.account}" (${httpCode(error)}): every container takes "Storage Blob Data Reader" on the whole account (or name the containers)`,
      );
    }
    throw explainAccessError(error, `storage account "${config.account}"`, undefined);
  }
  return names.sort();
}

export function azureSource(config: SourceConfig, options: AzureSourceOptions = {}): BlobSource {
  const signIn = signInOf(config, options);
  const service = blobServiceClient(config, options, signIn);
  const container = service.getContainerClient(config.container);
  // Listing and reads skip the SDK's pipeline (see azure-list.ts, azure-get.ts); the rest uses it.
  const requester = containerRequester(service, config.container, httpExchange(), { maxTries: options.maxTries ?? 6 });
  const maxStreamResumes = options.maxStreamResumes ?? 10;
  let includeTags = true;
  const where = `container "${config.container}" in storage account "${config.account}"`;

  return {
    async check() {
      let page;
      try {
        page = await container.listBlobsFlat().byPage({ maxPageSize: 1 }).next();
      } catch (error) {
        throw explainAccessError(error, where, signIn);
      }
      // Listing and reading are separate permissions (a SAS can grant one without the other): read one blob's properties.
      const first = page.done ? undefined : page.value.segment.blobItems[0];
      if (!first) return;
      try {
        await container.getBlobClient(first.name).getProperties();
      } catch (error) {
        if (statusOf(error) !== 403) return; // gone since it was listed, say: the copy itself will tell
        throw new ConfigError(
          `Azure lets these credentials list ${where} but not read its blobs (${httpCode(error)}): grant "Storage Blob Data Reader" (a SAS needs the "r" permission as well as "l")`,
        );
      }
    },

    async listPage(continuation, maxPageSize) {
      const list = () => listBlobsPage(requester, { continuation, maxPageSize, includeTags });
      try {
        return await list().catch((error: unknown) => {
          // Reading index tags takes its own permission (blobs/tags/read), which "Storage Blob Data
          // Reader" lacks: copy without tags rather than not at all, and say so once.
          if (!includeTags || codeOf(error) !== 'AuthorizationPermissionMismatch') throw error;
          includeTags = false;
          options.onWarning?.('blob index tags cannot be read (grant "Storage Blob Data Owner" or tags read to copy them); copying without tags');
          return list();
        });
      } catch (error) {
        throw explainAccessError(error, where, signIn);
      }
    },

    async blob(name) {
      // A listing from the name itself: the name sorts before every longer name it begins, so it comes first.
      const list = () => listBlobsPage(requester, { maxPageSize: 1, includeTags, prefix: name });
      try {
        const page = await list().catch((error: unknown) => {
          if (!includeTags || codeOf(error) !== 'AuthorizationPermissionMismatch') throw error;
          includeTags = false;
          options.onWarning?.('blob index tags cannot be read (grant "Storage Blob Data Owner" or tags read to copy them); copying without tags');
          return list();
        });
        return page.blobs.find((b) => b.name === name);
      } catch (error) {
        throw explainAccessError(error, where, signIn);
      }
    },

    async rehydrate(name) {
      try {
        await container.getBlobClient(name).setAccessTier('Cool', { rehydratePriority: 'Standard' });
      } catch (error) {
        if (statusOf(error) === 403) {
          throw new BlobFailure(
            `Azure refused to start rehydrating the blob (${httpCode(error)}): rehydration takes write permission on it ("Storage Blob Data Contributor"), or use --archive skip`,
          );
        }
        throw error;
      }
    },

    async properties(name, etag) {
      try {
        const p = await container.getBlobClient(name).getProperties(etag ? { conditions: { ifMatch: etag } } : {});
        return {
          etag: p.etag!,
          size: p.contentLength ?? 0,
          lastModified: p.lastModified!.toISOString(),
          contentMd5: md5Base64(p.contentMD5),
          metadata: p.metadata ?? {},
          contentType: p.contentType,
          contentEncoding: p.contentEncoding,
          contentLanguage: p.contentLanguage,
          contentDisposition: p.contentDisposition,
          cacheControl: p.cacheControl,
        } satisfies BlobProperties;
      } catch (error) {
        throw explainReadError(error, name);
      }
    },

    async read(name, etag, range?: ByteRange) {
      const offset = range?.start ?? 0;
      const download = async (from: number, count: number | undefined) => {
        try {
          return await getBlob(requester, name, {
            ifMatch: etag,
            range: from === 0 && count === undefined ? undefined : { start: from, end: count === undefined ? undefined : from + count - 1 },
          });
        } catch (error) {
          throw explainReadError(error, name);
        }
      };
      const answer = await download(offset, range ? range.end - range.start + 1 : undefined);
      const header = (h: string) => headerOf(answer, h);
      const length = Number(header('content-length') ?? 0);
      // Content-Range: bytes 0-99/12345
      const total = header('content-range')?.split('/')[1];
      const body = resumableRead(
        answer.body,
        async (received) => (await download(offset + received, length - received)).body,
        { length, maxResumes: maxStreamResumes, what: `blob "${name}"` },
      );
      return {
        body,
        length,
        etag: header('etag')!,
        size: total && total !== '*' ? Number(total) : length,
        lastModified: new Date(header('last-modified')!).toISOString(),
        // On a ranged read Content-MD5 is the range's (when asked for); the blob's own is x-ms-blob-content-md5.
        contentMd5: (range ? undefined : header('content-md5')) || header('x-ms-blob-content-md5') || undefined,
        metadata: metadataOf(answer),
        contentType: header('content-type'),
        contentEncoding: header('content-encoding'),
        contentLanguage: header('content-language'),
        contentDisposition: header('content-disposition'),
        cacheControl: header('cache-control'),
      } satisfies BlobRead;
    },
  };
}

function md5Base64(md5: Uint8Array | undefined): string | undefined {
  return md5 && md5.length > 0 ? Buffer.from(md5).toString('base64') : undefined;
}

/** Turn an error reading one blob into what the stage should do with it. */
function explainReadError(error: unknown, name: string): unknown {
  // A sign-in refused (explained by the credential): this blob is not copied, for the reason the line gives.
  if (error instanceof ConfigError) return new BlobFailure(error.message, { cause: error });
  const status = statusOf(error);
  const code = codeOf(error);
  if (status === 412 || code === 'ConditionNotMet') {
    return new SourceChangedError(`blob "${name}" changed after it was listed`, { cause: error });
  }
  if (code === 'BlobArchived' || (status === 409 && /archive/i.test(errorMessage(error)))) {
    return new BlobFailure('the blob is in the Archive tier: rehydrate it to Hot or Cool, then run again', { cause: error });
  }
  if (status === 404 || code === 'BlobNotFound') {
    return new SourceChangedError(`blob "${name}" was deleted after it was listed`, { cause: error });
  }
  if (status === 403) {
    return new BlobFailure(`Azure refused to read the blob (403 ${code ?? 'Forbidden'}): grant the identity "Storage Blob Data Reader"`, {
      cause: error,
    });
  }
  return error;
}

/** Where a service principal signs in, to name it when that fails. */
export interface SignIn {
  authority: string;
  tenantId: string;
  clientId?: string;
  /** A federated sign-in's STS tokens (their claims name the role in messages). */
  tokens?: WebIdentityTokens;
}

/** "403 AuthenticationFailed": the status and the service's code, when it sent one (a HEAD answer has no body to carry it). */
function httpCode(error: unknown): string {
  const code = codeOf(error);
  return [statusOf(error), code && code !== 'RestError' ? code : undefined].filter(Boolean).join(' ');
}

/** Container-level failures are the user's to fix: one line that says how. */
export function explainAccessError(error: unknown, where: string, signIn?: SignIn): unknown {
  if (error instanceof ConfigError) return error;
  const status = statusOf(error);
  const code = codeOf(error);
  const message = errorMessage(error);
  if (code === 'ContainerNotFound' || (status === 404 && !/account/i.test(message))) {
    return new ConfigError(`Azure ${where} does not exist: check the container name, or create it`);
  }
  const signInError = explainSignIn(error, signIn);
  if (signInError !== error) return signInError;
  if (status === 403 || code === 'AuthenticationFailed' || code === 'AuthorizationFailure' || code === 'AuthorizationPermissionMismatch') {
    return new ConfigError(
      `Azure refused access to ${where} (${httpCode(error)}): check the account key (or the SAS and its "rl" permissions), or grant the service principal "Storage Blob Data Reader" on it`,
    );
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'ECONNREFUSED' || code === 'REQUEST_SEND_ERROR') {
    return new ConfigError(`cannot reach Azure storage for ${where} (${code}): check the account name or endpoint`);
  }
  return error;
}

/** A failed sign-in to Entra ID (or to STS first, when federated) as one line naming the fix; anything else as it is. */
export function explainSignIn(error: unknown, signIn?: SignIn): unknown {
  if (error instanceof ConfigError) return error;
  const message = errorMessage(error);
  const authority = signIn?.authority ?? 'the Entra ID authority';
  // MSAL reports a discovery request that failed (no answer in time, unreachable, or a tenant
  // Entra ID does not know: it answers 400 there) as endpoints_resolution_error, and a token
  // request that got no answer as network_error; neither says which, nor names the authority.
  if (/endpoints_resolution_error/.test(message)) {
    const tenant = signIn ? ` for tenant "${signIn.tenantId}"` : '';
    return new ConfigError(
      `Azure sign-in failed: ${authority} gave no sign-in endpoints${tenant} (no answer in time, unreachable, or no such tenant): check tenantid, and that this machine can reach ${authority}`,
    );
  }
  if (/network_error/.test(message)) {
    return new ConfigError(
      `Azure sign-in failed: the token request to ${authority} got no answer (timed out or the connection broke): check that this machine can reach ${authority}, then run again`,
    );
  }
  const app = signIn?.tokens ? { tenantId: signIn.tenantId, clientId: signIn.clientId ?? '' } : undefined;
  const refusal = app && explainFederatedRefusal(message, app, signIn?.tokens?.claims());
  if (refusal) return refusal;
  // An expired secret is also invalid_client, but pasting the value again will not help.
  if (!app && /AADSTS7000222/.test(message)) {
    return new ConfigError(
      `the client secret of the service principal has expired (AADSTS7000222): create a new one under the app registration's "Certificates & secrets" and use its value`,
    );
  }
  if (!app && /AADSTS7000215|invalid_client/i.test(message)) {
    return new ConfigError(
      `Azure rejected the client secret of the service principal (AADSTS7000215): use the secret's Value from the app registration's "Certificates & secrets" page, not its Secret ID`,
    );
  }
  if (/AADSTS700016|unauthorized_client/i.test(message)) {
    return new ConfigError(`Azure does not know the client id in this tenant (AADSTS700016): check clientid and tenantid`);
  }
  if (/AADSTS90002|tenant .* not found/i.test(message)) {
    return new ConfigError(`Azure does not know the tenant id (AADSTS90002): check tenantid`);
  }
  if ((error as Error)?.name === 'CredentialUnavailableError' || (error as Error)?.name === 'AuthenticationError' || (error as Error)?.name === 'AuthenticationRequiredError') {
    if (app) return federatedSignInFailed(error, app);
    return new ConfigError(`Azure sign-in failed for the service principal (${message.slice(0, 160)}): check tenantid, clientid and clientsecret`);
  }
  return error;
}
