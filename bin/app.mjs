// The CDK app as `cdk.json` runs it: bin/app.ts prebuilt into dist/ (bin/build.mjs), first rebuilt when it is
// missing or older than the sources.
import { ensureBuilt } from './build.mjs';

await ensureBuilt('cdk app');
await import('../dist/app.mjs');
