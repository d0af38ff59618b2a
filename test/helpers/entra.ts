/**
 * A stand-in for Entra ID on 127.0.0.1, so the service-principal path
 * (ClientSecretCredential) and the federated one (ClientAssertionCredential with an
 * AWS web identity token) run for real: the OpenID discovery document and the
 * client-credentials token endpoint, over HTTPS with a self-signed certificate
 * made by openssl at test time. A client assertion is checked as Entra ID checks
 * one against the app's federated credentials (entra-federation.ts). The tokens
 * issued are unsigned but well-formed JWTs with the audience, issuer and times
 * Azurite checks (it does not check signatures).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient, StorageSharedKeyCredential, newPipeline, type ContainerClient, type RequestPolicyFactory } from '@azure/storage-blob';
import { AZURITE_KEY, startAzurite, type AzuriteEmulator } from '../../lambdas/local/emulators';
import { uploadBlob, type BlobSpec } from '../../lambdas/local/seed';
import { checkAssertion, type AssertionClaims, type FederatedTrust } from './entra-federation';

export type { FederatedTrust } from './entra-federation';

/** How a federated client proves itself: the form's client_assertion_type. */
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export interface Certificate {
  dir: string;
  /** PEM files: the certificate doubles as its own CA (for NODE_EXTRA_CA_CERTS). */
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
  remove(): void;
}

/** A self-signed certificate for IP 127.0.0.1, valid for a day, in a fresh temporary folder. */
export function makeCertificate(): Certificate {
  const dir = mkdtempSync(join(tmpdir(), 'azs3copy-tls-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  return {
    dir,
    certFile,
    keyFile,
    cert: readFileSync(certFile, 'utf8'),
    key: readFileSync(keyFile, 'utf8'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export type AuthorityMode =
  /** Issue tokens to the right client id and secret; 401 invalid_client otherwise. */
  | 'ok'
  /** Accept every connection, read the request, never answer. */
  | 'hang'
  /** Answer discovery, never answer a token request. */
  | 'hang-token'
  /** Answer discovery; answer a token request's headers and the start of its body, never the rest. */
  | 'stall-token';

export interface TokenRequestSeen {
  /** When the request had fully arrived (Date.now()). */
  at: number;
  method: string;
  path: string;
  /** Form fields of a token request, the client secret and any client assertion left out. */
  form?: Record<string, string>;
  /** The claims of the client assertion presented, if one was. */
  assertion?: AssertionClaims;
}

export interface TokenAuthority {
  /** The authority host to give the credential: https://127.0.0.1:PORT */
  url: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  mode: AuthorityMode;
  /** Every access token issued, so a test can check none leaked. */
  issued: string[];
  requests: TokenRequestSeen[];
  /** The app's federated identity credentials: the (issuer, subject, audience) it trusts. */
  trusts: FederatedTrust[];
  stop(): Promise<void>;
}

export interface AuthorityOptions {
  certificate: Pick<Certificate, 'cert' | 'key'>;
  tenantId?: string;
  clientId?: string;
  clientSecret?: string;
  mode?: AuthorityMode;
  /** Lifetime of issued tokens. */
  expiresInSeconds?: number;
  /** Secrets of this client that have expired (answered with AADSTS7000222). */
  expiredSecrets?: string[];
  /** Federated identity credentials of the app. @default none */
  trusts?: FederatedTrust[];
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** An access token as Entra ID issues one for Azure Storage, without a real signature. */
export function storageAccessToken(tenantId: string, clientId: string, expiresInSeconds: number): string {
  const now = Math.floor(Date.now() / 1000);
  const header = { typ: 'JWT', alg: 'RS256', kid: 'azs3copy-test' };
  const claims = {
    aud: 'https://storage.azure.com',
    iss: `https://sts.windows.net/${tenantId}/`,
    iat: now - 5,
    nbf: now - 5,
    exp: now + expiresInSeconds,
    appid: clientId,
    tid: tenantId,
    oid: '11111111-1111-1111-1111-111111111111',
    sub: '11111111-1111-1111-1111-111111111111',
    idtyp: 'app',
    ver: '1.0',
  };
  return `${b64url(header)}.${b64url(claims)}.${randomBytes(32).toString('base64url')}`;
}

export async function startTokenAuthority(options: AuthorityOptions): Promise<TokenAuthority> {
  const tenantId = options.tenantId ?? '72f988bf-0000-4000-8000-00000000c0de';
  const clientId = options.clientId ?? '0c1e4700-0000-4000-8000-0000000c11e1';
  const clientSecret = options.clientSecret ?? `sp~${randomBytes(18).toString('base64url')}`;
  const expiresIn = options.expiresInSeconds ?? 3600;
  const expired = new Set(options.expiredSecrets ?? []);
  const sockets = new Set<Socket>();
  const authority: TokenAuthority = {
    url: '',
    tenantId,
    clientId,
    clientSecret,
    mode: options.mode ?? 'ok',
    issued: [],
    requests: [],
    trusts: options.trusts ?? [],
    stop: () => stop(),
  };

  const server: Server = createServer({ cert: options.certificate.cert, key: options.certificate.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const path = new URL(req.url ?? '/', authority.url).pathname;
      const seen: TokenRequestSeen = { at: Date.now(), method: req.method ?? '', path };
      authority.requests.push(seen);
      if (authority.mode === 'hang') return; // the socket stays open, unanswered
      if (authority.mode === 'hang-token' && req.method === 'POST') return;
      if (authority.mode === 'stall-token' && req.method === 'POST') {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
        return void res.write('{"token_type":"Bearer",');
      }
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
        res.end(JSON.stringify(body));
      };
      const tenant = path.split('/')[1] ?? '';
      const base = `${authority.url}/${tenant}`;
      const traceId = '00000000-0000-0000-0000-000000000000';
      const timestamp = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
      const unknownTenant = {
        error: 'invalid_tenant',
        error_description: `AADSTS90002: Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Trace ID: ${traceId} Timestamp: ${timestamp}`,
        error_codes: [90002],
      };
      if (req.method === 'GET' && path === `/${tenant}/v2.0/.well-known/openid-configuration`) {
        // As Entra ID does, discovery already fails for a tenant it does not know.
        if (tenant !== tenantId) return json(400, unknownTenant);
        return json(200, {
          issuer: `${base}/v2.0`,
          authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
          token_endpoint: `${base}/oauth2/v2.0/token`,
          device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
          end_session_endpoint: `${base}/oauth2/v2.0/logout`,
          jwks_uri: `${authority.url}/${tenant}/discovery/v2.0/keys`,
          response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
          subject_types_supported: ['pairwise'],
          id_token_signing_alg_values_supported: ['RS256'],
          token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
          scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
          tenant_region_scope: 'EU',
          cloud_instance_name: '127.0.0.1',
        });
      }
      if (req.method === 'GET' && path === `/${tenant}/discovery/v2.0/keys`) return json(200, { keys: [] });
      if (req.method === 'POST' && path === `/${tenant}/oauth2/v2.0/token`) {
        const form = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
        const { client_secret: secret, client_assertion: assertion, ...rest } = form;
        seen.form = rest;
        if (tenant !== tenantId) return json(400, unknownTenant);
        if (form.client_id !== clientId) {
          return json(400, {
            error: 'unauthorized_client',
            error_description: `AADSTS700016: Application with identifier '${form.client_id}' was not found in the directory. Trace ID: ${traceId} Timestamp: ${timestamp}`,
            error_codes: [700016],
          });
        }
        if (form.client_assertion_type === JWT_BEARER && assertion !== undefined) {
          return void checkAssertion(assertion, authority.trusts).then((checked) => {
            seen.assertion = checked.claims;
            if (!checked.ok) return json(checked.status, checked.body);
            const token = storageAccessToken(tenantId, clientId, expiresIn);
            authority.issued.push(token);
            json(200, { token_type: 'Bearer', expires_in: expiresIn, ext_expires_in: expiresIn, access_token: token });
          });
        }
        if (secret !== undefined && expired.has(secret)) {
          return json(401, {
            error: 'invalid_client',
            error_description: `AADSTS7000222: The provided client secret keys for app '${clientId}' are expired. Visit the Azure portal to create new keys for your app. Trace ID: ${traceId} Timestamp: ${timestamp}`,
            error_codes: [7000222],
          });
        }
        if (secret !== clientSecret) {
          return json(401, {
            error: 'invalid_client',
            error_description: `AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'. Trace ID: ${traceId} Timestamp: ${timestamp}`,
            error_codes: [7000215],
            timestamp,
            trace_id: traceId,
            correlation_id: traceId,
          });
        }
        const token = storageAccessToken(tenantId, clientId, expiresIn);
        authority.issued.push(token);
        return json(200, { token_type: 'Bearer', expires_in: expiresIn, ext_expires_in: expiresIn, access_token: token });
      }
      json(404, { error: 'not_found', error_description: `no such endpoint: ${req.method} ${path}` });
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  authority.url = `https://127.0.0.1:${port}`;

  async function stop() {
    // A hanging authority holds its connections open: close them, or close() waits for ever.
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  return authority;
}

/**
 * A SharedKey client for an HTTPS Azurite, for seeding (Azurite with --oauth basic still takes
 * shared keys). NODE_EXTRA_CA_CERTS is read once, when Node starts, so this process cannot be
 * taught the certificate that way: the client's requests carry an agent that trusts it instead.
 */
export function trustingBlobService(azurite: AzuriteEmulator, certificate: Pick<Certificate, 'cert'>): { service: BlobServiceClient; close(): void } {
  const agent = new Agent({ ca: certificate.cert, keepAlive: true });
  const pipeline = newPipeline(new StorageSharedKeyCredential(azurite.account, AZURITE_KEY));
  const withAgent: RequestPolicyFactory = {
    create: (next) => ({
      sendRequest: (request) => {
        request.agent = agent;
        return next.sendRequest(request);
      },
    }),
  };
  pipeline.factories.push(withAgent);
  return { service: new BlobServiceClient(azurite.endpoint, pipeline), close: () => agent.destroy() };
}

export interface OAuthAzurite {
  certificate: Certificate;
  azurite: AzuriteEmulator;
  /** A fresh container holding the blobs asked for. */
  container: ContainerClient;
  stop(): Promise<void>;
}

/** An HTTPS Azurite that takes only OAuth tokens (and shared keys, for seeding), with a container of `blobs`. */
export async function startOAuthAzurite(blobs: BlobSpec[], containerName: string): Promise<OAuthAzurite> {
  const certificate = makeCertificate();
  const azurite = await startAzurite({ cert: certificate.certFile, key: certificate.keyFile, oauth: true });
  const seeding = trustingBlobService(azurite, certificate);
  try {
    const container = seeding.service.getContainerClient(containerName);
    await container.create();
    for (const spec of blobs) await uploadBlob(container, spec);
    return {
      certificate,
      azurite,
      container,
      stop: async () => {
        await azurite.stop();
        certificate.remove();
      },
    };
  } finally {
    seeding.close();
  }
}
