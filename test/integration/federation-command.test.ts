/**
 * `azs3copy federation --stack` against moto's CloudFormation and IAM, hosting the
 * stack's roles, policies and functions as synthesized (test/helpers/moto-template.ts:
 * moto cannot host the whole stack, so the rest is left out and the functions' code
 * inlined). moto has no outbound identity federation: the STS stand-in answers IAM's
 * GetOutboundWebIdentityFederationInfo and passes every other IAM call to moto.
 *
 * The proof that the commands are right: Entra ID (its stand-in's check) takes a
 * token STS issues for a printed role, when it trusts exactly what was printed.
 */
import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimsOf, webIdentityTokens } from '../../lambdas/core/stores/aws-web-identity';
import { checkAssertion, type FederatedTrust } from '../helpers/entra-federation';
import { runCli } from '../helpers/cli';
import { motoTemplate } from '../helpers/moto-template';
import { emulators, uniqueName } from '../helpers/stores';
import { startSts, type StsStandIn } from '../helpers/sts';
import { synthesize } from '../infra/synth';

const CLIENT_ID = '0c1e4700-1234-4000-8000-00000000c11e';
/**
 * The functions that read Azure, as the stack names them: every stage (the recombinator to verify copies in
 * GLACIER or DEEP_ARCHIVE from the source, events to look a written blob up), not the redrive.
 */
const READERS = [
  'etl-lambda01-qualify', 'etl-lambda02-find-blobs', 'etl-lambda03-download', 'etl-lambda04-largefile-initializer', 'etl-lambda05-parter',
  'etl-lambda06-recombinator', 'etl-lambda07-events',
];

describe('azs3copy federation --stack', () => {
  let stack: string;
  let iam: StsStandIn;

  beforeAll(async () => {
    const moto = emulators().s3Endpoint;
    stack = `${uniqueName('etl')}-azs3copy`;
    const cfn = new CloudFormationClient({ endpoint: moto, region: 'us-east-1' });
    await cfn.send(new CreateStackCommand({ StackName: stack, TemplateBody: JSON.stringify(motoTemplate(synthesize().json)), Capabilities: ['CAPABILITY_IAM'] }));
    cfn.destroy();
    iam = await startSts({ roles: { testing: { secretAccessKey: 'testing', arn: 'arn:aws:iam::123456789012:user/operator' } }, forwardTo: moto });
  }, 180_000);

  afterAll(() => iam?.stop());

  const federation = (...args: string[]) => runCli(['federation', '--stack', stack, ...args], {
    AWS_ENDPOINT_URL_CLOUDFORMATION: emulators().s3Endpoint,
    AWS_ENDPOINT_URL_IAM: iam.url,
  });

  it('prints the issuer, each reading function\'s role ARN as subject, and one az command per role', async () => {
    const run = await federation('--azure-client-id', CLIENT_ID);

    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    const subjects = [...run.stdout.matchAll(/^ {2}(etl-\S+) +(arn:aws:iam::123456789012:role\/\S+)$/gm)].map(([, fn, arn]) => ({ fn, arn }));
    expect(subjects.map((s) => s.fn)).toEqual(READERS);
    for (const { fn, arn } of subjects) expect(arn, fn).toMatch(new RegExp(`^arn:aws:iam::123456789012:role/${stack}-Pipeline[A-Za-z]+Role[0-9A-F]{8}-[A-Z0-9]+$`));
    expect(run.stdout).toContain(`Issuer (the account's outbound identity federation): ${iam.issuer}\n`);
    const commands = [...run.stdout.matchAll(/^ {2}az ad app federated-credential create --id (\S+) --parameters '(.*)'$/gm)];
    expect(commands.map(([, id, json]) => ({ id, ...JSON.parse(json!) }))).toEqual(subjects.map(({ fn, arn }) => ({
      id: CLIENT_ID,
      name: `azs3copy-${fn}`,
      issuer: iam.issuer,
      subject: arn,
      audiences: ['api://AzureADTokenExchange'],
      description: `azs3copy stack ${stack}: ${fn}`,
    })));
    expect(run.stdout).toContain('scenario "Other issuer", once per role:\n');
    expect(run.stdout).toContain(`  {"auth": "federated", "tenantid": "TENANT_ID", "clientid": "${CLIENT_ID}", "storageaccount": "...", "container": "...", "isactive": "True"}\n`);
  });

  it('prints what Entra ID then accepts: a token STS issues for a printed role passes the trust the commands create', async () => {
    const run = await federation('--json');
    expect(run.code).toBe(0);
    const plan = JSON.parse(run.stdout) as { issuer: string; roles: { function: string; subject: string }[]; commands: string[] };
    const trusts: FederatedTrust[] = plan.commands.map((c) => {
      const p = JSON.parse(/--parameters '(.*)'$/.exec(c)![1]!) as { issuer: string; subject: string; audiences: string[] };
      return { issuer: p.issuer, subject: p.subject, audience: p.audiences[0]! };
    });
    const parter = plan.roles.find((r) => r.function === 'etl-lambda05-parter')!;
    iam.options.roles.AKIAPARTERSESSION = { secretAccessKey: 'parter-session-secret', arn: parter.subject };
    const token = await webIdentityTokens({
      identity: { credentials: async () => ({ accessKeyId: 'AKIAPARTERSESSION', secretAccessKey: 'parter-session-secret' }), region: async () => 'us-east-1' },
      endpoint: iam.url,
    }).token();

    expect(await checkAssertion(token, trusts)).toEqual({ ok: true, claims: expect.objectContaining({ iss: iam.issuer, sub: parter.subject }) });
    // And not for the role of a function that does not read Azure (it may not even ask).
    expect(plan.roles.map((r) => r.function)).not.toContain('etl-redrive');
    expect(claimsOf(token).aud).toBe('api://AzureADTokenExchange');
  });

  it('says federation is off and how to turn it on, with the subjects but no commands, and exits 1', async () => {
    iam.options.federation = false;
    try {
      const run = await federation();
      expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 1, stderr: '' });
      expect(run.stdout).toContain('Outbound identity federation is OFF in account 123456789012: no function can get a token to sign in to Azure with.\n' +
        'Turn it on with "aws iam enable-outbound-web-identity-federation", or the IAM console\'s "Account settings" > "Outbound identity federation", ' +
        'then run this command again for the exact commands.\n');
      expect(run.stdout).toMatch(/^ {2}etl-lambda03-download +arn:aws:iam::123456789012:role\//m);
      expect(run.stdout).not.toContain('az ad app');
    } finally {
      iam.options.federation = true;
    }
  });

  it('stops with one line for a stack that does not exist', async () => {
    const run = await runCli(['federation', '--stack', 'nope-azs3copy'], { AWS_ENDPOINT_URL_CLOUDFORMATION: emulators().s3Endpoint, AWS_ENDPOINT_URL_IAM: iam.url });
    expect(run).toEqual({ code: 2, stdout: '', stderr: 'azs3copy: stack nope-azs3copy does not exist in this region: check the name (e.g. etl-azs3copy) and AWS_REGION\n' });
  });
});
