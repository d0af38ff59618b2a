/**
 * `azs3copy federation --stack STACK`: what Entra ID must be told to trust so the
 * deployed functions sign in to Azure with no secret. For the stack it finds the
 * roles allowed to ask STS for web identity tokens (the roles of the functions that
 * read Azure, as the template grants them), each role's ARN (the `sub` STS puts in a
 * role session's token), and the account's issuer URL (IAM
 * GetOutboundWebIdentityFederationInfo); then prints the `az` commands and the
 * portal's fields that add one federated identity credential per role, or, when the
 * account has federation off, how to turn it on.
 */
import { CloudFormationClient, DescribeStacksCommand, GetTemplateCommand, paginateListStackResources } from '@aws-sdk/client-cloudformation';
import { GetOutboundWebIdentityFederationInfoCommand, GetRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { ConfigError, codeOf, errorMessage } from '../core/errors';
import { AZURE_TOKEN_EXCHANGE_AUDIENCE, ENABLE_FEDERATION_HOW } from '../core/federation';
import { explainAwsError } from './aws-errors';
import { str, type CliValues } from './commands';

const TOKEN_ACTION = 'sts:GetWebIdentityToken';
const PERMISSIONS = 'cloudformation:DescribeStacks, cloudformation:GetTemplate, cloudformation:ListStackResources, iam:GetRole and iam:GetOutboundWebIdentityFederationInfo';

export interface FederatedRole {
  /** The function that runs as the role (its name in the template), or the role's logical id. */
  function: string;
  roleArn: string;
  /** What STS puts in the token's `sub` for the role's sessions: the role's ARN. */
  subject: string;
}

export interface FederationPlan {
  stack: string;
  account: string;
  region: string;
  /** The account's issuer URL; undefined while outbound identity federation is off. */
  issuer?: string;
  audience: string;
  roles: FederatedRole[];
}

type Template = { Resources?: Record<string, { Type?: string; Properties?: Record<string, any> }> };

/** Whether a policy document lets its holder ask STS for web identity tokens. */
function grantsTokens(document: { Statement?: unknown } | undefined): boolean {
  return [document?.Statement ?? []].flat().some((st) => {
    const statement = st as { Effect?: string; Action?: string | string[] };
    return statement.Effect === 'Allow' && [statement.Action ?? []].flat().includes(TOKEN_ACTION);
  });
}

/** The logical ids of the template's roles that may get web identity tokens, each with the function it runs. */
export function tokenRolesOf(template: Template): { roleId: string; function?: string }[] {
  const resources = template.Resources ?? {};
  const roleIds = new Set<string>();
  for (const [id, resource] of Object.entries(resources)) {
    if (resource.Type === 'AWS::IAM::Role' && (resource.Properties?.Policies ?? []).some((p: { PolicyDocument?: object }) => grantsTokens(p.PolicyDocument))) {
      roleIds.add(id);
    }
    if (resource.Type === 'AWS::IAM::Policy' && grantsTokens(resource.Properties?.PolicyDocument)) {
      for (const role of resource.Properties?.Roles ?? []) if (typeof role?.Ref === 'string') roleIds.add(role.Ref);
    }
  }
  const functionOf = new Map<string, string>();
  for (const resource of Object.values(resources)) {
    const role = resource.Properties?.Role?.['Fn::GetAtt']?.[0];
    const name = resource.Properties?.FunctionName;
    if (resource.Type === 'AWS::Lambda::Function' && typeof role === 'string' && typeof name === 'string') functionOf.set(role, name);
  }
  return [...roleIds].sort().map((roleId) => ({ roleId, function: functionOf.get(roleId) }));
}

export async function federationPlan(stack: string, clients: { cfn: CloudFormationClient; iam: IAMClient }): Promise<FederationPlan> {
  const aws = <T>(what: string, call: () => Promise<T>) => call().catch((error: unknown) => {
    if (/does not exist/.test(errorMessage(error))) throw new ConfigError(`stack ${stack} does not exist in this region: check the name (e.g. etl-azs3copy) and AWS_REGION`);
    throw explainAwsError(error, what, PERMISSIONS);
  });
  const described = await aws(`read stack ${stack}`, () => clients.cfn.send(new DescribeStacksCommand({ StackName: stack })));
  // arn:aws:cloudformation:eu-west-1:123456789012:stack/etl-azs3copy/...
  const [, , , region = '', account = ''] = (described.Stacks?.[0]?.StackId ?? '').split(':');
  const body = (await aws(`read the template of stack ${stack}`, () => clients.cfn.send(new GetTemplateCommand({ StackName: stack })))).TemplateBody ?? '{}';
  let template: Template;
  try {
    template = JSON.parse(body) as Template;
  } catch {
    throw new ConfigError(`the template of stack ${stack} is not JSON: it is not a stack azs3copy deployed`);
  }
  const wanted = tokenRolesOf(template);
  if (wanted.length === 0) {
    throw new ConfigError(`no role in stack ${stack} may ask STS for web identity tokens: it is not an azs3copy stack, or one deployed before federation existed (deploy again)`);
  }
  const physical = new Map<string, string>();
  await aws(`list the resources of stack ${stack}`, async () => {
    for await (const page of paginateListStackResources({ client: clients.cfn }, { StackName: stack })) {
      for (const r of page.StackResourceSummaries ?? []) if (r.ResourceType === 'AWS::IAM::Role') physical.set(r.LogicalResourceId!, r.PhysicalResourceId!);
    }
  });
  const roles: FederatedRole[] = [];
  for (const { roleId, function: fn } of wanted) {
    const roleName = physical.get(roleId);
    if (!roleName) throw new ConfigError(`stack ${stack} has no role ${roleId} deployed yet: wait for the deployment to finish, then run this again`);
    const { Role } = await aws(`read role ${roleName}`, () => clients.iam.send(new GetRoleCommand({ RoleName: roleName })));
    roles.push({ function: fn ?? roleId, roleArn: Role!.Arn!, subject: Role!.Arn! });
  }
  let issuer: string | undefined;
  try {
    const info = await clients.iam.send(new GetOutboundWebIdentityFederationInfoCommand({}));
    issuer = info.JwtVendingEnabled === false ? undefined : info.IssuerIdentifier;
  } catch (error) {
    if (!/^FeatureDisabled/.test(codeOf(error) ?? '')) throw explainAwsError(error, 'read the account\'s outbound identity federation', PERMISSIONS);
  }
  return { stack, account, region, issuer, audience: AZURE_TOKEN_EXCHANGE_AUDIENCE, roles: roles.sort((a, b) => a.function.localeCompare(b.function)) };
}

/** A federated identity credential's name: letters, digits, `-` and `_`, at most 120. */
function credentialName(fn: string): string {
  return `azs3copy-${fn}`.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 120);
}

/** The `az` command that adds the credential trusting one role. */
export function azCommand(plan: FederationPlan, role: FederatedRole, clientId = 'CLIENT_ID'): string {
  const parameters = {
    name: credentialName(role.function),
    issuer: plan.issuer,
    subject: role.subject,
    audiences: [plan.audience],
    description: `azs3copy stack ${plan.stack}: ${role.function}`,
  };
  return `az ad app federated-credential create --id ${clientId} --parameters '${JSON.stringify(parameters)}'`;
}

export function federationText(plan: FederationPlan, clientId?: string): string {
  const width = Math.max(...plan.roles.map((r) => r.function.length));
  const lines = [
    `Stack ${plan.stack} (account ${plan.account}, ${plan.region}): ${plan.roles.length} functions read Azure, each as its own role.`,
    '',
    'Subjects (a role\'s ARN: what STS puts in the "sub" claim of a token for the role\'s sessions):',
    ...plan.roles.map((r) => `  ${r.function.padEnd(width)}  ${r.subject}`),
    '',
  ];
  if (!plan.issuer) {
    lines.push(
      `Outbound identity federation is OFF in account ${plan.account}: no function can get a token to sign in to Azure with.`,
      `Turn it on with ${ENABLE_FEDERATION_HOW}, then run this command again for the exact commands.`,
    );
    return lines.join('\n') + '\n';
  }
  lines.push(
    `Issuer (the account's outbound identity federation): ${plan.issuer}`,
    '',
    `Trust each role in Entra ID, one federated identity credential per role (an app registration holds at most 20):`,
    ...plan.roles.map((r) => `  ${azCommand(plan, r, clientId)}`),
    ...(clientId ? [] : ['  (CLIENT_ID: the app registration\'s application (client) id; --azure-client-id fills it in)']),
    '',
    'Or in the Microsoft Entra admin center: App registrations > the app > Certificates & secrets > Federated credentials > Add credential,',
    'scenario "Other issuer", once per role:',
    `  Issuer: ${plan.issuer}`,
    '  Type: Explicit subject identifier; Value: the role\'s ARN (above)',
    '  Name: azs3copy-<function>, e.g. ' + credentialName(plan.roles[0]!.function),
    `  Audience: ${plan.audience}`,
    '',
    'Then set the secret to sign in by federation, with no "clientsecret" (the functions re-read it within a minute):',
    `  {"auth": "federated", "tenantid": "TENANT_ID", "clientid": "${clientId ?? 'CLIENT_ID'}", "storageaccount": "...", "container": "...", "isactive": "True"}`,
  );
  return lines.join('\n') + '\n';
}

export async function federationCommand(values: CliValues, env: NodeJS.ProcessEnv): Promise<number> {
  const stack = str(values, 'stack');
  if (!stack) throw new ConfigError('--stack is missing: name the deployed stack (e.g. etl-azs3copy)');
  const clientId = str(values, 'azure-client-id');
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  const clients = { cfn: new CloudFormationClient({ region }), iam: new IAMClient({ region }) };
  try {
    const plan = await federationPlan(stack, clients);
    const commands = plan.issuer ? plan.roles.map((r) => azCommand(plan, r, clientId)) : [];
    process.stdout.write(values.json ? JSON.stringify({ ...plan, federation: plan.issuer ? 'on' : 'off', commands }, null, 2) + '\n' : federationText(plan, clientId));
    return plan.issuer ? 0 : 1;
  } finally {
    clients.cfn.destroy();
    clients.iam.destroy();
  }
}
