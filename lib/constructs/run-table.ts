/**
 * The runs' state (lambdas/core/run-ledger.ts): one DynamoDB table, on demand,
 * encrypted at rest, each item expiring 90 days after its run started (TTL on
 * `expiresAt`). Reports outlive it: they are written to the bucket. A run's
 * request pattern, per million blobs at 100 blobs a message: about 10,000 unit
 * items created and settled (each settle a transaction of two writes), a few
 * hundred listing steps, and for each multipart upload one transaction per part.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { acknowledge } from '../nag';
import type { Naming } from '../naming';

export interface RunTableProps {
  readonly naming: Naming;
}

export class RunTable extends Construct {
  readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string, props: RunTableProps) {
    super(scope, id);
    this.table = new dynamodb.Table(this, 'Table', {
      tableName: props.naming.runTableName,
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      timeToLiveAttribute: 'expiresAt',
      // The state of runs in progress and recent ones; the reports are in the bucket and stay.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    acknowledge(
      this.table,
      'AwsSolutions-DDB3',
      'Point-in-time recovery would restore the state of runs whose reports are already in the bucket; a lost table costs a run\'s progress view, never a copy.',
    );
  }
}
