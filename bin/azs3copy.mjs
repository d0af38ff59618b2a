#!/usr/bin/env node
// The `azs3copy` command: runs the CLI that `npm ci` prebuilt into dist/ (bin/build.mjs), first rebuilding it
// when it is missing or older than the sources, so neither a TypeScript loader nor old code ever runs.
// A copy runs on huge pages where that helps (bin/relaunch.mjs: half the CPU on large blobs), in a new process.
const args = process.argv.slice(2);
// Loaded only where it may act, so that `--help` stays as quick as it was.
const relaunch = process.env.AZS3COPY_RELAUNCHED || args[0] === 'copy' || args[0] === 'redrive' ? await import('./relaunch.mjs') : undefined;
// First of all: a relaunched copy must end with the process that started it.
relaunch?.followParent(process.env);
// The AWS SDK's Node-version notice would break the one-line error contract; it says nothing actionable here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
if (relaunch?.movesBytes(args) && relaunch.hugePagesHelp(process.env, relaunch.hostFacts())) {
  // The new process checks the build (and rebuilds it) itself: this one only waits for it.
  const code = await relaunch.relaunchOnHugePages(process.argv.slice(1), process.env);
  if (code !== undefined) process.exit(code);
}
const { ensureBuilt } = await import('./build.mjs');
await ensureBuilt('azs3copy');
await import('../dist/azs3copy.mjs');
