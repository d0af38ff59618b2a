/**
 * The Azure SDK as Lambda layers, one per package family (identity, storage),
 * so each function's own bundle stays small and the functions share one copy.
 *
 * Each layer is built at synth time, offline, from the project's node_modules:
 * esbuild bundles the package into one minified ESM file at
 * `nodejs/node_modules/<package>/index.mjs` (see buildLayer in lib/bundling.ts).
 * The asset is hashed by its output, so a new SDK version in package-lock.json
 * gives a new layer version; the manifest under `layers/<name>/` states which
 * packages and version ranges the layer provides.
 */
import { AssetHashType } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { AZURE_LAYERS, buildLayer, installedVersion, layerSourceDir, type AzureLayerName } from '../bundling';
import type { Naming } from '../naming';
import { LAMBDA_ARCHITECTURE, LAMBDA_RUNTIME } from './copy-function';

export interface AzureLayersProps {
  readonly naming: Naming;
}

export class AzureLayers extends Construct {
  readonly layers: Record<AzureLayerName, lambda.LayerVersion>;

  constructor(scope: Construct, id: string, props: AzureLayersProps) {
    super(scope, id);
    const layer = (name: AzureLayerName, constructId: string) => {
      const packages = AZURE_LAYERS[name];
      return new lambda.LayerVersion(this, constructId, {
        layerVersionName: props.naming.name(name),
        description: packages.map((pkg) => `${pkg}@${installedVersion(pkg)}`).join(', ') + ' (esbuild ESM bundle)',
        compatibleRuntimes: [LAMBDA_RUNTIME],
        compatibleArchitectures: [LAMBDA_ARCHITECTURE],
        code: lambda.Code.fromAsset(layerSourceDir(name), {
          assetHashType: AssetHashType.OUTPUT,
          bundling: {
            // Never used: local bundling always succeeds or throws. CDK requires an image to be named.
            image: LAMBDA_RUNTIME.bundlingImage,
            local: {
              tryBundle(outputDir: string) {
                buildLayer(name, outputDir);
                return true;
              },
            },
          },
        }),
      });
    };
    this.layers = { 'azure-identity': layer('azure-identity', 'Identity'), 'azure-storage': layer('azure-storage', 'Storage') };
  }

  /** Every layer, for a function's `layers`. */
  all(): lambda.ILayerVersion[] {
    return Object.values(this.layers);
  }
}
