/**
 * Identities in the box. moto enforces IAM for IAM users only, so the admin that
 * sets everything up is a user with `*` on `*`, created within moto's first
 * unauthenticated requests, and each Lambda execution role is stood in for by a
 * user holding exactly the role's policies: the function runs with that user's
 * key, and a grant the template lacks is an AccessDenied, as in AWS.
 */
import {
  AttachUserPolicyCommand,
  CreateAccessKeyCommand,
  CreateUserCommand,
  IAMClient,
  PutUserPolicyCommand,
} from '@aws-sdk/client-iam';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface AwsConfig {
  endpoint: string;
  region: string;
  credentials: Credentials;
}

/** The requests bootstrapAdmin makes before it has a key: moto's INITIAL_NO_AUTH_ACTION_COUNT. */
export const BOOTSTRAP_REQUESTS = 3;

const ALLOW_ALL = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] });

/** Create the admin user and its key with moto's unauthenticated requests (exactly BOOTSTRAP_REQUESTS of them). */
export async function bootstrapAdmin(endpoint: string, region: string): Promise<Credentials> {
  const iam = new IAMClient({ endpoint, region, credentials: { accessKeyId: 'bootstrap', secretAccessKey: 'bootstrap' }, maxAttempts: 1 });
  try {
    await iam.send(new CreateUserCommand({ UserName: 'box-admin' }));
    await iam.send(new PutUserPolicyCommand({ UserName: 'box-admin', PolicyName: 'everything', PolicyDocument: ALLOW_ALL }));
    const { AccessKey } = await iam.send(new CreateAccessKeyCommand({ UserName: 'box-admin' }));
    return { accessKeyId: AccessKey!.AccessKeyId!, secretAccessKey: AccessKey!.SecretAccessKey! };
  } finally {
    iam.destroy();
  }
}

/** An IAM user standing in for a role: the same policies, a key to sign with. */
export class RoleUser {
  private constructor(
    readonly userName: string,
    readonly arn: string,
    readonly credentials: Credentials,
    private readonly iam: IAMClient,
  ) {}

  static async create(iam: IAMClient, userName: string): Promise<RoleUser> {
    const { User } = await iam.send(new CreateUserCommand({ UserName: userName }));
    const { AccessKey } = await iam.send(new CreateAccessKeyCommand({ UserName: userName }));
    return new RoleUser(userName, User!.Arn!, { accessKeyId: AccessKey!.AccessKeyId!, secretAccessKey: AccessKey!.SecretAccessKey! }, iam);
  }

  async putPolicy(name: string, document: unknown): Promise<void> {
    await this.iam.send(new PutUserPolicyCommand({ UserName: this.userName, PolicyName: name, PolicyDocument: JSON.stringify(document) }));
  }

  async attachPolicy(arn: string): Promise<void> {
    await this.iam.send(new AttachUserPolicyCommand({ UserName: this.userName, PolicyArn: arn }));
  }
}
