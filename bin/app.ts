/** The azs3copy CDK app: one stack, configured from CDK context (see "Deploying to AWS" in the README). */
import { App } from 'aws-cdk-lib';
import { CopyStack } from '../lib/copy-stack';
import { settingsFromContext } from '../lib/settings';

const app = new App();
new CopyStack(app, 'Azs3copy', {
  settings: settingsFromContext(app.node),
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
