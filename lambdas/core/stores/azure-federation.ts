/**
 * Signing in to Entra ID with no secret: @azure/identity's ClientAssertionCredential,
 * whose assertion is the STS token of the AWS identity this runs as (a function's
 * role; aws-web-identity.ts). Entra ID checks the token against the app
 * registration's federated identity credentials (issuer, subject, audience) and the
 * issuer's published keys, and answers with an access token for Azure Storage.
 *
 * Why a sign-in was refused is said in one line that names the fix, from what Entra
 * ID answered and the token's own claims (issuer and subject: the role), never the
 * token. A refusal is remembered for a minute, so a function reading many blobs asks
 * STS and Entra ID once, not once per blob, while the trust is missing.
 */
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import type { ClientAssertionCredential, ClientAssertionCredentialOptions } from '@azure/identity';
import { ConfigError, errorMessage } from '../errors';
import { AZURE_TOKEN_EXCHANGE_AUDIENCE } from '../federation';
import type { TokenClaims, WebIdentityTokens } from './aws-web-identity';

/** How long a refused sign-in is answered from memory: the functions re-read the secret as often. */
const REFUSAL_HELD_MS = 60_000;

const SETUP = 'azs3copy federation --stack STACK prints the commands';

export interface FederatedApp {
  tenantId: string;
  clientId: string;
}

/**
 * A credential for the app registration that trusts this AWS identity. `explain` turns a failure into the
 * one line the user sees (the Azure source's explanation, which knows the authority and the tenant).
 */
export function federatedCredential(
  app: FederatedApp,
  tokens: WebIdentityTokens,
  options: ClientAssertionCredentialOptions,
  explain: (error: unknown) => unknown,
): TokenCredential {
  // @azure/identity is loaded at the first sign-in (see lazyCredential in azure-source.ts).
  let assertion: Promise<ClientAssertionCredential> | undefined;
  const signIn = () => (assertion ??= import('@azure/identity').then(({ ClientAssertionCredential }) =>
    new ClientAssertionCredential(app.tenantId, app.clientId, () => tokens.token(), options)));
  let refused: { error: ConfigError; until: number } | undefined;
  return {
    async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken> {
      if (refused && Date.now() < refused.until) throw refused.error;
      try {
        // The STS token first: its failure then reaches the caller as it is, not wrapped by MSAL.
        await tokens.token();
        const token = await (await signIn()).getToken(scopes, options);
        refused = undefined;
        return token;
      } catch (error) {
        const explained = explain(error);
        if (explained instanceof ConfigError) refused = { error: explained, until: Date.now() + REFUSAL_HELD_MS };
        throw explained;
      }
    },
  };
}

/** The first quoted value after `label` in Entra ID's message (`presented assertion subject 'x'`). */
function quoted(message: string, label: string): string | undefined {
  return new RegExp(`${label} '([^']*)'`, 'i').exec(message)?.[1];
}

/** Why Entra ID refused the AWS token, when it says so in a way a user can act on; undefined otherwise. */
export function explainFederatedRefusal(message: string, app: FederatedApp, claims: TokenClaims | undefined): ConfigError | undefined {
  const code = /AADSTS(\d+)/.exec(message)?.[1];
  if (!code) return undefined;
  const issuer = claims?.iss ?? quoted(message, 'issuer') ?? 'your AWS account\'s issuer URL';
  const subject = claims?.sub ?? quoted(message, 'subject') ?? 'the role\'s ARN';
  const audience = [claims?.aud ?? quoted(message, 'audience')].flat().filter(Boolean).join(', ') || 'another audience';
  const trust = `add a federated credential to app ${app.clientId} with issuer ${issuer}, subject ${subject} and audience ${AZURE_TOKEN_EXCHANGE_AUDIENCE} (${SETUP})`;
  switch (code) {
    case '700213':
    case '7002137':
    case '7002138':
      return new ConfigError(`Entra ID does not trust AWS role ${subject} to sign in as app ${app.clientId} (AADSTS${code}): ${trust}`);
    case '70021':
      return new ConfigError(`Entra ID found no federated credential of app ${app.clientId} matching this AWS role's token (AADSTS70021): ${trust}`);
    case '700211':
      return new ConfigError(
        `Entra ID has no federated credential of app ${app.clientId} for issuer ${issuer} (AADSTS700211): set the credential's issuer to exactly ${issuer}, this AWS account's issuer (${SETUP})`,
      );
    case '700212':
      return new ConfigError(
        `Entra ID has no federated credential of app ${app.clientId} for audience ${audience} (AADSTS700212): set the credential's audience to ${AZURE_TOKEN_EXCHANGE_AUDIENCE}`,
      );
    case '700024':
      return new ConfigError('Entra ID found the AWS token outside its valid time (AADSTS700024): check the clock of the machine this runs on, then run again');
    case '7000272':
    case '700027':
    case '50013':
      return new ConfigError(
        `Entra ID could not verify the AWS token's signature with the keys ${issuer} publishes (AADSTS${code}): check that the federated credential's issuer is this AWS account's issuer URL, and that ${issuer}/.well-known/jwks.json can be reached from the internet`,
      );
    case '90061':
    case '50166':
      return new ConfigError(
        `Entra ID could not read the OpenID configuration of issuer ${issuer} (AADSTS${code}): check that ${issuer}/.well-known/openid-configuration can be reached from the internet, then run again`,
      );
    default:
      return undefined;
  }
}

/** Any other failed federated sign-in: one line, with the start of what was said. */
export function federatedSignInFailed(error: unknown, app: FederatedApp): ConfigError {
  return new ConfigError(
    `Azure sign-in by federation failed for app ${app.clientId} (${errorMessage(error).slice(0, 160)}): check tenantid and clientid, and the app's federated credentials (${SETUP})`,
  );
}
