/**
 * A DynamoDB table on the test moto for the run state, created as the stack creates it.
 */
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { dynamoTable } from '../../lambdas/core/state/dynamo-table';
import type { StateTable } from '../../lambdas/core/state/table';
import { emulators, uniqueName } from './stores';

export async function newDynamoTable(): Promise<StateTable> {
  const endpoint = emulators().s3Endpoint;
  const client = new DynamoDBClient({ endpoint, region: 'us-east-1' });
  const name = uniqueName('runs');
  await client.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }],
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }, { AttributeName: 'sk', AttributeType: 'S' }],
    }),
  );
  return dynamoTable(name, client, { endpoint });
}
