/**
 * The azs3copy stack: connects the constructs in lib/constructs/, nothing more.
 */
import { CfnOutput, Stack, Tags, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { AzureLayers } from './constructs/azure-layers';
import { CopyBucket } from './constructs/copy-bucket';
import { CopyDashboard } from './constructs/copy-dashboard';
import { CopyPipeline } from './constructs/copy-pipeline';
import { CopySchedule, RunWatch } from './constructs/copy-schedule';
import { RunAlarms } from './constructs/run-alarms';
import { CopySecret } from './constructs/copy-secret';
import { OperatorAlerts } from './constructs/operator-alerts';
import { RedriveFunction } from './constructs/redrive-function';
import { Naming } from './naming';
import type { CopySettings } from './settings';

export interface CopyStackProps extends StackProps {
  readonly settings: CopySettings;
}

export class CopyStack extends Stack {
  readonly pipeline: CopyPipeline;
  readonly redrive: RedriveFunction;

  constructor(scope: Construct, id: string, props: CopyStackProps) {
    const naming = new Naming(props.settings.prefix);
    super(scope, id, { stackName: naming.stackName, description: `azs3copy ${naming.prefix}: copies an Azure Blob Storage container into S3`, ...props });
    const { settings } = props;
    // CloudFormation's dashboard resource takes no tags (cfn-lint E3002), though CDK would add them.
    const untaggable = { excludeResourceTypes: ['AWS::CloudWatch::Dashboard'] };
    Tags.of(this).add('project', 'azs3copy', untaggable);
    Tags.of(this).add('azs3copy:prefix', naming.prefix, untaggable);

    const layers = new AzureLayers(this, 'AzureLayers', { naming });
    const secret = new CopySecret(this, 'Config', { naming });
    const bucket = new CopyBucket(this, 'Destination', {
      naming,
      existingBucketName: settings.bucketName,
      existingKeyArn: settings.bucketKeyArn,
      versioned: settings.versioned,
    });
    // Further destinations: existing buckets, granted to every stage as the bucket is.
    const moreBuckets = settings.moreDestinations.map((d, n) => new CopyBucket(this, `MoreDestination${n + 1}`, {
      naming, existingBucketName: d.bucket, existingKeyArn: d.keyArn, region: d.region,
    }));
    this.pipeline = new CopyPipeline(this, 'Pipeline', { naming, settings, layers: layers.all(), secret, bucket, moreBuckets });
    if (settings.schedule) {
      new CopySchedule(this, 'Schedule', { naming, expression: settings.schedule, target: this.pipeline.functions.qualify });
    }
    new RunWatch(this, 'Watch', { naming, target: this.pipeline.functions.qualify });
    const runAlarms = new RunAlarms(this, 'RunAlarms', { naming });
    const deadLetterQueues = this.pipeline.deadLetterQueues();
    this.redrive = new RedriveFunction(this, 'Redrive', {
      naming,
      deadLetterQueues,
      topics: this.pipeline.topics,
      logRetentionDays: settings.logRetentionDays,
    });
    const alerts = new OperatorAlerts(this, 'Alerts', {
      naming,
      key: this.pipeline.topicKey,
      alarms: [...deadLetterQueues.map((q) => q.alarm), ...runAlarms.all()],
      email: settings.alarmEmail,
    });
    // Whichever stage records a run's last outcome tells the operator how it ended.
    for (const fn of Object.values(this.pipeline.functions)) fn.bindOperatorTopic(alerts.topic, alerts.publishStatements());
    const dashboard = new CopyDashboard(this, 'Dashboard', {
      naming,
      functions: Object.values(this.pipeline.functions),
      deadLetterQueues,
      runAlarms: runAlarms.all(),
    });

    new CfnOutput(this, 'SecretName', { value: secret.secret.secretName, description: 'Edit this secret to configure and switch on the copy' });
    new CfnOutput(this, 'BucketName', { value: bucket.bucket.bucketName, description: 'Where the copies land' });
    new CfnOutput(this, 'StartFunction', { value: this.pipeline.functions.qualify.function.functionName, description: 'Invoke to start a run by hand' });
    new CfnOutput(this, 'EventsEndpoint', {
      value: this.pipeline.eventsUrl.url,
      description: 'Event Grid webhook: subscribe the storage account\'s blob events to this URL with ?code=<webhookkey from the secret> appended',
    });
    new CfnOutput(this, 'RedriveFunction', {
      value: this.redrive.function.functionName,
      description: 'Once a failure\'s cause is fixed, invoke with {"queueUrl": "<a dead-letter queue\'s URL>"} to send its messages back to their stage',
    });
    new CfnOutput(this, 'OperatorTopic', { value: alerts.topic.topicArn, description: 'Run summaries, and alarms (dead letters, failed or stalled runs), go to this topic' });
    new CfnOutput(this, 'RunTable', { value: this.pipeline.runTable.table.tableName, description: 'The runs\' state: azs3copy status --stack reads it' });
    new CfnOutput(this, 'DashboardName', { value: dashboard.dashboard.dashboardName, description: 'CloudWatch dashboard' });
  }
}
