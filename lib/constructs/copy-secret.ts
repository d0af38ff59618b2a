/**
 * The copy's configuration: one Secrets Manager secret, encrypted with its own
 * customer-managed KMS key, created with the template value that users edit in
 * the console (Azure service principal, storage account, container, `isactive`,
 * `begindate`). It is created switched off (`isactive: "False"`).
 */
import { Aws, RemovalPolicy, SecretValue } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { acknowledge } from '../nag';
import { Construct } from 'constructs';
import { SECRET_TEMPLATE } from '../../lambdas/core/config';
import type { Naming } from '../naming';

export interface CopySecretProps {
  readonly naming: Naming;
}

export class CopySecret extends Construct {
  readonly secret: secretsmanager.Secret;
  readonly key: kms.Key;

  constructor(scope: Construct, id: string, props: CopySecretProps) {
    super(scope, id);
    this.key = new kms.Key(this, 'Key', {
      description: `Encrypts the azs3copy configuration secret of ${props.naming.prefix}`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.secret = new secretsmanager.Secret(this, 'Secret', {
      secretName: props.naming.name('azure-source'),
      description: 'azs3copy configuration: Azure service principal, storage account and container, isactive, begindate. Edit it as plaintext JSON.',
      encryptionKey: this.key,
      // Placeholders only, nothing secret: users replace them in the console. CloudFormation writes this value
      // when the secret is created and whenever the template value changes, so the template must stay stable.
      secretStringValue: SecretValue.unsafePlainText(JSON.stringify(SECRET_TEMPLATE, null, 2)),
    });
    acknowledge(
      this.secret,
      'AwsSolutions-SMG4',
      'The secret holds an Azure service principal\'s client secret, which is issued and rotated in Entra ID, not by AWS; users paste the new value.',
    );
  }

  /** What a function needs to read the secret: GetSecretValue on it, Decrypt with its key through Secrets Manager only. */
  readStatements(): iam.PolicyStatement[] {
    return [
      new iam.PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [this.secret.secretArn] }),
      new iam.PolicyStatement({
        actions: ['kms:Decrypt'],
        resources: [this.key.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${Aws.REGION}.amazonaws.com` } },
      }),
    ];
  }
}
