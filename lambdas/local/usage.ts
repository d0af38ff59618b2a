/**
 * The command line's help text, in a module of its own: `azs3copy --help` imports
 * this and nothing heavier.
 */
export const USAGE = `azs3copy: copy Azure Blob Storage containers into an S3 bucket

Usage:
  azs3copy copy --azure-connection-string CONN --container NAME --bucket NAME
                [--s3-endpoint URL] [--prefix DEST_PREFIX] [--begindate ISO_DATE] [--report FILE.json]
  azs3copy copy --azure-account NAME --azure-tenant-id ID --azure-client-id ID --container NAME --bucket NAME ...
                (the client secret from the AZURE_CLIENT_SECRET environment variable, never a flag)
  azs3copy copy --secret-file SECRET.json [--bucket NAME] ...
                (the deployed secret's JSON: credentials, container, isactive, begindate, bucket, prefix)
  azs3copy copy ... --all-containers | --container A,B --container C
                [--include GLOB]... [--exclude GLOB]... [--min-size N] [--max-size N]
                [--mirror [--max-deletes N]] [--storage-class CLASS | --tier-map Hot=STANDARD,Cool=STANDARD_IA,...]
                [--archive skip|rehydrate] [--also-to BUCKET[/PREFIX]]...
  azs3copy plan <the copy's options, its selection too> [--region REGION] [--report PLAN.json]
                list and compare as the copy would, write nothing: what it would copy, skip, fail and (mirror) delete,
                its requests, its cost (AWS and Azure) and its time, deployed and with this CLI
  azs3copy check-secret SECRET.json   check a secret with the parser the functions use; prints no credential
  azs3copy redrive <the copy's options> [--run-id ID | --dead-letters FILE]
                send the messages a local run dead-lettered back to their stages, once the cause is fixed
  azs3copy redrive --queue-url URL --topic-arn ARN [--max-messages N]
                move a deployed pipeline's dead-letter queue back to the stage's topic
  azs3copy status --bucket NAME [--s3-endpoint URL] [--prefix P] [--run-id ID] [--json]
  azs3copy status --stack STACK_NAME [--run-id ID] [--json]
                how far a run is (the latest when no id is given): state, objects and bytes, rate, ETA, failures
  azs3copy runs --bucket NAME [--s3-endpoint URL] [--prefix P] [--limit N] [--json]
  azs3copy runs --stack STACK_NAME [--limit N] [--json]
                recent runs, one line each
  azs3copy federation --stack STACK_NAME [--azure-client-id ID] [--json]
                what Entra ID must trust for the deployed functions to sign in to Azure with no secret
                ("auth": "federated"): the account's issuer, each function role's subject, and the az commands
  azs3copy watch --listen PORT <the copy's source and destination options> [--webhook-key KEY]
                serve the events endpoint (Azure Event Grid, BlobCreated/BlobDeleted) at http://127.0.0.1:PORT/,
                copying each blob written as the deployed lambda07 does, until stopped; one line per batch
  azs3copy demo       start the local emulators, seed a demo container, copy it, verify it

Options:
  --azure-connection-string  or AZURE_STORAGE_CONNECTION_STRING in the environment
  --azure-blob-endpoint      blob endpoint, when not https://ACCOUNT.blob.core.windows.net
  --azure-authority-host     Entra ID authority, for sovereign clouds
  --secret-file FILE         take the source and switches from the secret's JSON instead of the flags above
  --s3-endpoint URL          an S3-compatible server (implies path-style addressing)
  --prefix P                 put objects under this key prefix (kept exactly as given)
  --also-to BUCKET[/PREFIX]  copy to this destination too (repeatable): each blob is read from Azure once and
                             written to --bucket and to each of these; each compared, and reported, on its own
  --begindate D              copy only blobs modified after D (ISO 8601; UTC if no zone)
  --report FILE              write the JSON report here (plan: the plan)
  --dry-run                  copy: list and compare only; the run's report (in the bucket too) is the plan
  --plan FILE                copy: the plan this copy follows; the report shows its prediction beside what the run did
  --region REGION            the AWS region whose prices cost a plan or a run (us-east-1 or eu-west-1; default us-east-1)
  --container NAME           a container to copy; repeat it or separate names with commas for several
  --all-containers           every container of the account but $logs and the other $ system containers;
                             with more than one container, keys are PREFIX<container>/<blob name>
  --include GLOB             copy only blobs whose name matches (repeatable; * within one path segment,
                             ** across segments, ? one character)
  --exclude GLOB             leave out blobs whose name matches (repeatable; an exclude wins over an include)
  --min-size N / --max-size N  only blobs of at least / at most N bytes (K, M, G, T suffixes: 1024s)
  --mirror                   delete objects azs3copy wrote whose blob is gone from the source (never another
                             object, one outside the prefix, or one a filter leaves out)
  --max-deletes N            the mirror's guard: a run that would delete more deletes nothing and fails
                             (default 1,000 or 1% of the objects under the prefix, whichever is larger)
  --storage-class CLASS      S3 storage class of every object (STANDARD, STANDARD_IA, INTELLIGENT_TIERING,
                             ONEZONE_IA, GLACIER_IR, GLACIER, DEEP_ARCHIVE, REDUCED_REDUNDANCY)
  --tier-map T=CLASS,...     storage class by the blob's access tier (Hot, Cool, Cold); --storage-class for the rest
  --archive skip|rehydrate   archived blobs: report them skipped (default), or start their rehydration to Cool
                             (standard priority; needs write permission on the blobs) and copy them on a later run
  --large-blob-mib N         blobs this large or larger are copied in parts (default 100)
  --part-mib N               part size (default 64; grown so no blob needs over 10,000 parts)
  --concurrency N            download invocations at once (default 6)
  --function-timeout S       stop every stage's invocation after S seconds, as Lambda would (default: each
                             stage's deployed timeout); the report records each stage's invocations and longest
  --run-id ID                status: that run; redrive: only this run's dead letters (default: every run's kept in the bucket)
  --stack NAME               status, runs, federation: the deployed stack (its run table and bucket, from its outputs)
  --json                     status, runs, federation: print JSON instead of text
  --limit N                  runs: how many (default 20)
  --listen PORT              watch: the local port (on 127.0.0.1; 0 picks a free one)
  --webhook-key KEY          watch: the key Event Grid sends as ?code=KEY (or AZS3COPY_WEBHOOK_KEY; at least 16 characters)
  --dead-letters FILE        redrive the dead letters kept in this file (when the bucket could not take them)
  --verbose / --quiet        more logging / no progress lines
  --log-file FILE            write the JSON log there instead of stderr

Every run keeps its state and its report in the bucket, under .azs3copy-state/ (report: .azs3copy-state/runs/RUN_ID/report.html).
A local run keeps the messages it dead-letters in the bucket, under .azs3copy-state/dead-letters/RUN_ID.json.
AWS credentials and region come from the usual AWS environment variables.
Exit status: 0 when nothing failed (or the secret's isactive is off), 1 when some blobs failed
(or some messages could not be redriven, or federation is off in the account), 2 on bad input, 3 on an unexpected error.
`;
