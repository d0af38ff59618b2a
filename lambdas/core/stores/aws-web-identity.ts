/**
 * A signed JWT that says "this is AWS role R", from STS GetWebIdentityToken: the
 * proof Entra ID takes instead of a client secret once an app registration trusts
 * the account's issuer for that role (a federated identity credential). A token
 * is kept until shortly before it expires and shared by concurrent callers, so a
 * warm function asks STS once per Azure sign-in, not once per blob.
 *
 * The installed AWS SDK has no STS client with this API (@aws-sdk/client-sts is
 * not a dependency, and the SDK's internal STS client knows only AssumeRole*), so
 * the call is the STS Query API request itself, signed by the SDK's own SigV4
 * signer (@smithy/signature-v4) with the SDK's default credentials and region.
 * STS serves the API on regional endpoints only, never on the global one. A token
 * never reaches a log: the logger redacts anything shaped like a JWT (log.ts).
 */
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { ConfigError, codeOf, errorMessage, statusOf } from '../errors';
import { AZURE_TOKEN_EXCHANGE_AUDIENCE, ENABLE_FEDERATION_HOW, WEB_IDENTITY_SIGNING_ALGORITHM, WEB_IDENTITY_TOKEN_SECONDS } from '../federation';
import { isTransient, withRetry } from '../retry';
import { httpError, httpExchange, originOf, textOf, xmlErrorFields, type HttpExchange } from './http-exchange';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Who signs the request, and where: what every AWS client resolves from the environment, a profile or the function's role. */
export interface AwsIdentity {
  credentials(): Promise<AwsCredentials>;
  region(): Promise<string>;
}

/** The claims a message may name (never the token itself, nor its signature). */
export interface TokenClaims {
  iss?: string;
  sub?: string;
  aud?: string | string[];
}

export interface WebIdentityTokens {
  /** A token with at least the refresh margin left: the cached one, or a new one. */
  token(): Promise<string>;
  /** The claims of the token last issued, for messages about why Entra ID refused it. */
  claims(): TokenClaims | undefined;
}

export interface WebIdentityOptions {
  audience?: string;
  /** @default the SDK's default credential chain and region */
  identity?: AwsIdentity;
  /** @default AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, or the region's STS endpoint */
  endpoint?: string;
  env?: NodeJS.ProcessEnv;
  /** Time one request may go without data. @default 10 s */
  timeoutMs?: number;
  /** A token is fetched again when less than this is left of it. @default 60 s */
  refreshMarginMs?: number;
  exchange?: HttpExchange;
}

/** STS's Query API version. */
const STS_VERSION = '2011-06-15';

/**
 * The SDK's default credential chain and region (environment, profile, SSO, container or instance role),
 * exactly as every AWS client here resolves them. No STS client is installed: they are taken from a client
 * that is, which makes no request until it sends one (and this one never sends).
 */
export function defaultAwsIdentity(): AwsIdentity {
  // The client is loaded on first use: a copy that never signs in to Azure this way does not load it.
  let made: Promise<import('@aws-sdk/client-secrets-manager').SecretsManagerClient['config']> | undefined;
  const config = () => (made ??= import('@aws-sdk/client-secrets-manager').then(({ SecretsManagerClient }) => new SecretsManagerClient({}).config));
  return { credentials: async () => (await config()).credentials(), region: async () => (await config()).region() };
}

/** The regional STS endpoint, unless the environment names one (as the SDK reads AWS_ENDPOINT_URL_STS). */
export function stsEndpoint(region: string, env: NodeJS.ProcessEnv = process.env): string {
  const configured = env.AWS_ENDPOINT_URL_STS ?? env.AWS_ENDPOINT_URL;
  if (configured) return configured;
  return `https://sts.${region}.amazonaws.com${region.startsWith('cn-') ? '.cn' : ''}`;
}

/** SHA-256 and HMAC-SHA256 from node:crypto, in the shape the SigV4 signer takes. */
class NodeSha256 {
  private readonly hash: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}

function bytes(data: string | ArrayBuffer | ArrayBufferView): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/** The claims of a JWT, read without checking its signature (that is the relying party's job). */
export function claimsOf(token: string): TokenClaims {
  try {
    return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as TokenClaims;
  } catch {
    return {};
  }
}

interface IssuedToken {
  token: string;
  expiresOnTimestamp: number;
  claims: TokenClaims;
}

export function webIdentityTokens(options: WebIdentityOptions = {}): WebIdentityTokens {
  const audience = options.audience ?? AZURE_TOKEN_EXCHANGE_AUDIENCE;
  const env = options.env ?? process.env;
  const margin = options.refreshMarginMs ?? 60_000;
  let identity = options.identity;
  let exchange = options.exchange;
  let cached: Promise<IssuedToken> | undefined;
  let last: TokenClaims | undefined;

  async function fetchToken(): Promise<IssuedToken> {
    identity ??= defaultAwsIdentity();
    exchange ??= httpExchange({ maxSockets: 2, idleTimeoutMs: options.timeoutMs ?? 10_000 });
    const region = await identity.region().catch((error: unknown) => {
      throw new ConfigError(`no AWS region to ask STS for a token to sign in to Azure with (${errorMessage(error)}): set AWS_REGION; GetWebIdentityToken is served by regional STS endpoints only`);
    });
    const endpoint = options.endpoint ?? stsEndpoint(region, env);
    const signer = new SignatureV4({ service: 'sts', region, credentials: () => identity!.credentials(), sha256: NodeSha256 });
    const body = new URLSearchParams({
      Action: 'GetWebIdentityToken',
      Version: STS_VERSION,
      'Audience.member.1': audience,
      SigningAlgorithm: WEB_IDENTITY_SIGNING_ALGORITHM,
      DurationSeconds: String(WEB_IDENTITY_TOKEN_SECONDS),
    }).toString();
    const url = new URL(endpoint);
    const origin = originOf(url);
    try {
      return await withRetry(async () => {
        const signed = await signer.sign({
          method: 'POST',
          protocol: url.protocol,
          hostname: url.hostname,
          port: origin.port,
          path: url.pathname || '/',
          query: {},
          headers: { host: origin.host, 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
          body,
        });
        const answer = await exchange!.send(origin, 'POST', url.pathname || '/', signed.headers, Buffer.from(body));
        const text = await textOf(answer);
        if (answer.status !== 200) {
          const fields = xmlErrorFields(text);
          throw httpError(fields.message ?? `STS answered ${answer.status}`, { status: answer.status, code: fields.code });
        }
        const token = /<WebIdentityToken>([^<]+)<\/WebIdentityToken>/.exec(text)?.[1]?.trim();
        if (!token) throw httpError('STS answered GetWebIdentityToken without a token', { status: answer.status, code: 'InternalError' });
        const claims = claimsOf(token);
        const expiration = Date.parse(/<Expiration>([^<]+)<\/Expiration>/.exec(text)?.[1] ?? '');
        const expiresOnTimestamp = Number.isNaN(expiration) ? ((claims as { exp?: number }).exp ?? 0) * 1000 : expiration;
        return { token, expiresOnTimestamp, claims };
      }, { attempts: 3, baseDelayMs: 200, maxDelayMs: 2_000, isRetryable: (error) => isTransient(error) || /^Throttling/.test(codeOf(error) ?? '') });
    } catch (error) {
      throw explainStsError(error, endpoint);
    }
  }

  return {
    async token() {
      const previous = cached;
      const held = previous && (await previous.catch(() => undefined));
      if (held && held.expiresOnTimestamp - Date.now() >= margin) return held.token;
      // Another caller may have started the next fetch while this one waited: share it.
      if (cached !== previous && cached) return (await cached).token;
      const fetching = fetchToken();
      cached = fetching;
      fetching.then((issued) => (last = issued.claims), () => cached === fetching && (cached = undefined));
      return (await fetching).token;
    },
    claims: () => last,
  };
}

/** Why STS gave no token, as one line that says what to do; a passing failure is rethrown as it is. */
export function explainStsError(error: unknown, endpoint: string): unknown {
  if (error instanceof ConfigError) return error;
  const code = codeOf(error) ?? '';
  const status = statusOf(error);
  if (/^OutboundWebIdentityFederationDisabled/.test(code)) {
    return new ConfigError(
      `outbound identity federation is off in this AWS account, so STS gives no token to sign in to Azure with (${code}): turn it on with ${ENABLE_FEDERATION_HOW}, then trust the issuer it shows in Entra ID (azs3copy federation --stack STACK prints how)`,
    );
  }
  if (code === 'RegionDisabledException' || code === 'RegionDisabled') {
    return new ConfigError(`STS is not activated in this region (${code}): activate its endpoint in the IAM console's "Account settings", or set AWS_REGION to a region where it is`);
  }
  if (code === 'InvalidClientTokenId' || code === 'SignatureDoesNotMatch' || code === 'ExpiredToken' || code === 'UnrecognizedClientException') {
    return new ConfigError(`STS did not accept the AWS credentials this runs with (${code}): check them, or renew them if they are temporary`);
  }
  if (code === 'AccessDenied' || code === 'AccessDeniedException' || status === 403) {
    return new ConfigError(
      `AWS refused sts:GetWebIdentityToken to the identity this runs as (${code || status}): allow it for audience ${AZURE_TOKEN_EXCHANGE_AUDIENCE} (the deployed functions' roles have it; a local run needs it on your own identity)`,
    );
  }
  if (code === 'CredentialsProviderError') {
    return new ConfigError('no AWS credentials found to ask STS for a token to sign in to Azure with: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)');
  }
  if (code === 'ENOTFOUND' || code === 'ECONNREFUSED' || code === 'EAI_AGAIN') {
    return new ConfigError(`cannot reach AWS STS at ${endpoint} (${code}): check AWS_REGION (GetWebIdentityToken is on regional endpoints only) and, if set, AWS_ENDPOINT_URL_STS`);
  }
  return error;
}
