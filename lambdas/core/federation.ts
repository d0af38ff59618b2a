/**
 * Signing in to Azure with no secret, as the few values both sides must agree on:
 * what the functions ask STS for (lambdas/core/stores/aws-web-identity.ts), what
 * their roles may ask for and nothing else (lib/grants.ts), and what Entra ID is
 * told to trust (`azs3copy federation`). Free of imports, so the CDK app reads it.
 */

/** The audience Entra ID takes in a token it exchanges: a federated identity credential's audience in the public cloud. */
export const AZURE_TOKEN_EXCHANGE_AUDIENCE = 'api://AzureADTokenExchange';

/** The token's lifetime in seconds: STS's default, and plenty for the one exchange it is used for. */
export const WEB_IDENTITY_TOKEN_SECONDS = 300;

/** The token's signature: RSA with SHA-256, which Entra ID verifies (STS also offers ES384). */
export const WEB_IDENTITY_SIGNING_ALGORITHM = 'RS256';

/** Where an account turns the feature on, for messages. */
export const ENABLE_FEDERATION_HOW =
  '"aws iam enable-outbound-web-identity-federation", or the IAM console\'s "Account settings" > "Outbound identity federation"';
