/**
 * A stand-in for AWS STS GetWebIdentityToken (and the account's OIDC issuer) on
 * 127.0.0.1, so the federated sign-in runs for real: the Query API request must be
 * SigV4-signed by a known access key (checked here independently of the signer the
 * code uses), the subject is the role that key belongs to, and the token is an RS256
 * JWT whose key the issuer publishes through OIDC discovery and JWKS, as AWS does at
 * `ISSUER/.well-known/openid-configuration` and `ISSUER/.well-known/jwks.json`.
 *
 * It also answers IAM's GetOutboundWebIdentityFederationInfo, which moto lacks, and
 * passes every other IAM request on to moto (`forwardTo`).
 */
import { createHash, createHmac, generateKeyPairSync, randomBytes, randomUUID, sign, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface StsRole {
  secretAccessKey: string;
  /** The role's ARN: the token's subject, as STS puts it for a role session. */
  arn: string;
}

export interface StsOptions {
  /** Access key id -> the role whose session it is. */
  roles: Record<string, StsRole>;
  /** Outbound identity federation on in the account. @default true */
  federation?: boolean;
  /** Sign with a key the issuer does not publish (a forged or stale token). @default false */
  unpublishedKey?: boolean;
  /** Issue tokens already this many seconds past expiry (a clock far off). @default 0 */
  expiredBySeconds?: number;
  account?: string;
  /** Where IAM requests other than GetOutboundWebIdentityFederationInfo go (moto). */
  forwardTo?: string;
}

export interface StsRequestSeen {
  action: string;
  accessKeyId?: string;
  form: Record<string, string>;
  /** Why the request was refused, if it was. */
  refused?: string;
}

export interface StsStandIn {
  /** The endpoint (AWS_ENDPOINT_URL_STS), which is also the issuer URL. */
  url: string;
  issuer: string;
  options: StsOptions;
  requests: StsRequestSeen[];
  /** Every token issued, so a test can check none leaked. */
  issued: string[];
  stop(): Promise<void>;
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

/** What was wrong with the request's signature; undefined when it is right. Follows the SigV4 spec, not any one signer. */
export function sigV4Problem(req: IncomingMessage, body: Buffer, secretOf: (accessKeyId: string) => string | undefined, now = Date.now()): { code: string; accessKeyId?: string } | undefined {
  const auth = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
    String(req.headers.authorization ?? ''),
  );
  if (!auth) return { code: 'MissingAuthenticationToken' };
  const [, accessKeyId, day, region, service, signedHeaders, signature] = auth;
  const secret = secretOf(accessKeyId);
  if (!secret) return { code: 'InvalidClientTokenId', accessKeyId };
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  const at = Date.parse(amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'));
  if (!amzDate.startsWith(day) || Number.isNaN(at) || Math.abs(now - at) > 5 * 60_000) return { code: 'SignatureDoesNotMatch', accessKeyId };
  const names = signedHeaders.split(';');
  if (!names.includes('host') || !names.includes('x-amz-date')) return { code: 'SignatureDoesNotMatch', accessKeyId };
  const payloadHash = sha256(body);
  const declared = req.headers['x-amz-content-sha256'];
  if (declared !== undefined && declared !== payloadHash) return { code: 'SignatureDoesNotMatch', accessKeyId };
  const url = new URL(req.url ?? '/', 'http://stand-in');
  const query = [...url.searchParams].map(([k, v]) => [encodeURIComponent(k), encodeURIComponent(v)]).sort().map(([k, v]) => `${k}=${v}`).join('&');
  const canonicalHeaders = names.map((name) => `${name}:${String(req.headers[name] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonicalRequest = [req.method, url.pathname, query, canonicalHeaders, signedHeaders, payloadHash].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), service), 'aws4_request');
  if (hmac(key, stringToSign).toString('hex') !== signature) return { code: 'SignatureDoesNotMatch', accessKeyId };
  return undefined;
}

function newKey(): { privateKey: KeyObject; jwk: Record<string, unknown> } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = randomBytes(8).toString('hex');
  return { privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' } };
}

export async function startSts(options: StsOptions): Promise<StsStandIn> {
  const published = newKey();
  const unpublished = newKey();
  const account = options.account ?? '123456789012';
  const sockets = new Set<Socket>();
  const standIn: StsStandIn = { url: '', issuer: '', options, requests: [], issued: [], stop: () => stop() };

  const xml = (res: ServerResponse, status: number, body: string) => {
    res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': randomUUID() });
    res.end(body);
  };
  const error = (res: ServerResponse, status: number, code: string, message: string, ns: string) =>
    xml(res, status, `<ErrorResponse xmlns="${ns}"><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`);

  function issue(roleArn: string, audience: string, seconds: number): { token: string; expiration: string } {
    // A token already expired ends `expiredBySeconds` ago, as a clock that far off would make it.
    const exp = Math.floor(Date.now() / 1000) + (options.expiredBySeconds ? -options.expiredBySeconds : seconds);
    const now = exp - seconds;
    const key = options.unpublishedKey ? unpublished : published;
    const header = { alg: 'RS256', typ: 'JWT', kid: key.jwk.kid };
    const claims = {
      iss: standIn.issuer,
      aud: audience,
      sub: roleArn,
      iat: now,
      nbf: now,
      exp,
      jti: randomUUID(),
      'https://sts.amazonaws.com/': { aws_account: account, source_region: 'us-east-1', principal_id: roleArn },
    };
    const data = `${b64url(header)}.${b64url(claims)}`;
    const token = `${data}.${sign('sha256', Buffer.from(data), key.privateKey).toString('base64url')}`;
    standIn.issued.push(token);
    return { token, expiration: new Date(exp * 1000).toISOString() };
  }

  async function forward(req: IncomingMessage, body: Buffer, res: ServerResponse) {
    const headers = Object.fromEntries(Object.entries(req.headers).filter(([name]) => name !== 'host' && name !== 'content-length')) as Record<string, string>;
    const answer = await fetch(new URL(req.url ?? '/', options.forwardTo), { method: req.method, headers, body: req.method === 'GET' ? undefined : body });
    res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'text/xml' });
    res.end(Buffer.from(await answer.arrayBuffer()));
  }

  function handle(req: IncomingMessage, body: Buffer, res: ServerResponse): void | Promise<void> {
    const path = new URL(req.url ?? '/', 'http://stand-in').pathname;
    if (req.method === 'GET' && path === '/.well-known/openid-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({
        issuer: standIn.issuer,
        jwks_uri: `${standIn.issuer}/.well-known/jwks.json`,
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256', 'ES384'],
      }));
    }
    if (req.method === 'GET' && path === '/.well-known/jwks.json') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ keys: [published.jwk] }));
    }
    const form = Object.fromEntries(new URLSearchParams(body.toString('utf8')));
    const action = form.Action ?? '';
    if (action !== 'GetWebIdentityToken' && action !== 'GetOutboundWebIdentityFederationInfo' && options.forwardTo) return forward(req, body, res);
    const problem = sigV4Problem(req, body, (id) => options.roles[id]?.secretAccessKey);
    const seen: StsRequestSeen = { action, accessKeyId: problem?.accessKeyId ?? /Credential=([^/]+)/.exec(String(req.headers.authorization))?.[1], form };
    standIn.requests.push(seen);
    const iamNs = 'https://iam.amazonaws.com/doc/2010-05-08/';
    const stsNs = 'https://sts.amazonaws.com/doc/2011-06-15/';
    const federation = options.federation ?? true;
    if (problem) {
      seen.refused = problem.code;
      const message = problem.code === 'InvalidClientTokenId'
        ? 'The security token included in the request is invalid.'
        : 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';
      return error(res, 403, problem.code, message, action.startsWith('GetOutbound') ? iamNs : stsNs);
    }
    if (action === 'GetOutboundWebIdentityFederationInfo') {
      if (!federation) {
        seen.refused = 'FeatureDisabled';
        return error(res, 404, 'FeatureDisabled', 'Outbound web identity federation is disabled for this account.', iamNs);
      }
      return xml(res, 200, `<GetOutboundWebIdentityFederationInfoResponse xmlns="${iamNs}"><GetOutboundWebIdentityFederationInfoResult>` +
        `<IssuerIdentifier>${standIn.issuer}</IssuerIdentifier><JwtVendingEnabled>true</JwtVendingEnabled>` +
        `</GetOutboundWebIdentityFederationInfoResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></GetOutboundWebIdentityFederationInfoResponse>`);
    }
    if (action !== 'GetWebIdentityToken' || form.Version !== '2011-06-15') {
      seen.refused = 'InvalidAction';
      return error(res, 400, 'InvalidAction', `Could not find operation ${action} for version ${form.Version}`, stsNs);
    }
    if (!federation) {
      seen.refused = 'OutboundWebIdentityFederationDisabled';
      return error(res, 403, 'OutboundWebIdentityFederationDisabled',
        'The outbound web identity federation feature is not enabled for this account. To use this feature, you must first enable it through the AWS Management Console or API.', stsNs);
    }
    const audiences = Object.keys(form).filter((k) => /^Audience\.member\.\d+$/.test(k)).map((k) => form[k]);
    const seconds = Number(form.DurationSeconds ?? 300);
    if (audiences.length !== 1 || form.SigningAlgorithm !== 'RS256' || !(seconds >= 60 && seconds <= 3600)) {
      seen.refused = 'ValidationError';
      return error(res, 400, 'ValidationError', 'this stand-in issues RS256 tokens for one audience, for 60-3600 seconds', stsNs);
    }
    const { token, expiration } = issue(options.roles[seen.accessKeyId!].arn, audiences[0], seconds);
    return xml(res, 200, `<GetWebIdentityTokenResponse xmlns="${stsNs}"><GetWebIdentityTokenResult>` +
      `<WebIdentityToken>${token}</WebIdentityToken><Expiration>${expiration}</Expiration>` +
      `</GetWebIdentityTokenResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></GetWebIdentityTokenResponse>`);
  }

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      Promise.resolve(handle(req, Buffer.concat(chunks), res)).catch((failure: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(failure));
      });
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  standIn.url = `http://127.0.0.1:${port}`;
  standIn.issuer = standIn.url;

  async function stop() {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  return standIn;
}
