/**
 * What Entra ID does with a client assertion from an external issuer (workload
 * identity federation), for the local authority in entra.ts: the app's federated
 * identity credentials are looked up by the token's issuer; the token's RS256
 * signature is checked with the key the issuer publishes (OIDC discovery, then
 * JWKS, fetched as Entra ID fetches them); then its times, its subject and its
 * audience. A refusal is answered in the shape and with the AADSTS codes Entra ID
 * uses for each case.
 */
import { createPublicKey, verify, type JsonWebKey } from 'node:crypto';

/** One federated identity credential of the app: the (issuer, subject, audience) it trusts. */
export interface FederatedTrust {
  issuer: string;
  subject: string;
  audience: string;
}

export interface AssertionClaims {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  exp?: number;
  nbf?: number;
  iat?: number;
}

export type AssertionCheck =
  | { ok: true; claims: AssertionClaims }
  | { ok: false; status: number; body: Record<string, unknown>; claims?: AssertionClaims };

const decode = (part: string | undefined) => JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;

function refuse(code: number, description: string, claims?: AssertionClaims): AssertionCheck {
  const traceId = '00000000-0000-0000-0000-000000000000';
  const timestamp = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  return {
    ok: false,
    status: 401,
    claims,
    body: {
      error: 'invalid_client',
      error_description: `AADSTS${code}: ${description} Trace ID: ${traceId} Correlation ID: ${traceId} Timestamp: ${timestamp}`,
      error_codes: [code],
      timestamp,
      trace_id: traceId,
      correlation_id: traceId,
      error_uri: `https://login.microsoftonline.com/error?code=${code}`,
    },
  };
}

const CHECK_FIC = 'Check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation';

/** The key the issuer publishes under this kid, fetched as Entra ID fetches it; undefined when there is none. */
async function publishedKey(issuer: string, kid: unknown): Promise<JsonWebKey | undefined> {
  const discovery = (await (await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`)).json()) as { issuer?: string; jwks_uri?: string };
  if (discovery.issuer !== issuer || !discovery.jwks_uri) throw new Error(`the issuer's discovery document names ${discovery.issuer}`);
  const { keys } = (await (await fetch(discovery.jwks_uri)).json()) as { keys: (JsonWebKey & { kid?: string })[] };
  return keys.find((key) => key.kid === kid);
}

export async function checkAssertion(assertion: string, trusts: readonly FederatedTrust[], now = Date.now()): Promise<AssertionCheck> {
  const [head, body, signature] = assertion.split('.');
  let header: Record<string, unknown>;
  let claims: AssertionClaims;
  try {
    header = decode(head);
    claims = decode(body) as AssertionClaims;
  } catch {
    return refuse(50027, 'JWT token is invalid or malformed.');
  }
  const byIssuer = trusts.filter((t) => t.issuer === claims.iss);
  if (byIssuer.length === 0) {
    return refuse(700211, `No matching federated identity record found for presented assertion issuer '${claims.iss}'. ${CHECK_FIC}`, claims);
  }
  let key: JsonWebKey | undefined;
  try {
    key = await publishedKey(claims.iss!, header.kid);
  } catch {
    return refuse(90061, `Request to External OIDC endpoint failed.`, claims);
  }
  if (!key) {
    return refuse(7000272, `The certificate with identifier ${String(header.kid)} used to sign the federated credential could not be found in the metadata of identity provider ${claims.iss}. Please validate that your Identity Provider's metadata exposes the key used to sign the incoming token.`, claims);
  }
  const signed = header.alg === 'RS256' && verify('sha256', Buffer.from(`${head}.${body}`), createPublicKey({ key, format: 'jwk' }), Buffer.from(signature ?? '', 'base64url'));
  if (!signed) return refuse(700027, 'Client assertion failed signature validation.', claims);
  const seconds = Math.floor(now / 1000);
  if (typeof claims.exp !== 'number' || claims.exp < seconds || (claims.nbf ?? 0) > seconds + 300) {
    const at = (s: number | undefined) => new Date((s ?? 0) * 1000).toISOString();
    return refuse(700024, `Client assertion is not within its valid time range. Current time: ${new Date(now).toISOString()}, assertion valid from ${at(claims.nbf ?? claims.iat)}, expiry time of assertion ${at(claims.exp)}. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .`, claims);
  }
  const bySubject = byIssuer.filter((t) => t.subject === claims.sub);
  if (bySubject.length === 0) {
    return refuse(700213, `No matching federated identity record found for presented assertion subject '${claims.sub}'. ${CHECK_FIC}`, claims);
  }
  const audiences = [claims.aud].flat();
  if (!bySubject.some((t) => audiences.includes(t.audience))) {
    return refuse(700212, `No matching federated identity record found for presented assertion audience '${audiences.join(', ')}'. ${CHECK_FIC}`, claims);
  }
  return { ok: true, claims };
}
