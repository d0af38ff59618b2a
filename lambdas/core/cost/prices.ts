/**
 * The price list a plan and a report are costed with: one data file
 * (prices.json: region, date, sources), read with no network access. A region
 * the file does not hold is refused in one line naming those it holds.
 */
import { ConfigError } from '../errors';
import data from './prices.json';

export interface EgressTier {
  /** Cumulative GB (Azure bills GiB as "GB") up to which this rate applies; null for the last tier. */
  upToGB: number | null;
  perGB: number;
}

export interface AzurePrices {
  egressTiers: EgressTier[];
  egressFree: string;
  listPer10000: number;
  readPer10000ByTier: Record<string, number>;
  otherPer10000: number;
  retrievalPerGBByTier: Record<string, number>;
  /** Rehydrating an archived blob (Set Blob Tier to Cool at standard priority): the operation, and the bytes retrieved. */
  rehydrate: { setTierPer10000: number; retrievalPerGB: number; priority: string };
}

export interface AwsPrices {
  name: string;
  azureRegion: string;
  s3: { putCopyPostListPer1000: number; getHeadOtherPer1000: number; putPer1000ByStorageClass: Record<string, number>; free: string };
  lambda: { arm64PerGBSecond: number; perMillionRequests: number; free: string };
  sns: { perMillionRequests: number; chunkBytes: number; free: string };
  sqs: { perMillionRequests: number; chunkBytes: number; free: string };
  dynamodb: { perMillionWriteRequestUnits: number; perMillionReadRequestUnits: number; free: string };
  secretsmanager: { per10000Calls: number; perSecretMonth: number };
  kms: { per10000Requests: number; perKeyMonth: number; free: string };
  logs: { ingestPerGB: number; free: string };
}

export interface PriceList {
  region: string;
  date: string;
  currency: string;
  aws: AwsPrices;
  azureRegion: string;
  azure: AzurePrices;
  sources: Record<string, string>;
}

export const DEFAULT_PRICE_REGION = 'us-east-1';

export function priceRegions(): string[] {
  return Object.keys(data.aws);
}

/** The prices of one AWS region (with the Azure region the file pairs it with), or a one-line refusal. */
export function pricesFor(region: string = DEFAULT_PRICE_REGION, subject = '--region'): PriceList {
  const aws = (data.aws as Record<string, AwsPrices>)[region];
  if (!aws) {
    throw new ConfigError(`${subject} is "${region}", which the price list does not hold: use ${priceRegions().join(' or ')} (prices in lambdas/core/cost/prices.json)`);
  }
  const azure = (data.azure as Record<string, AzurePrices>)[aws.azureRegion];
  return { region, date: data.date, currency: data.currency, aws, azureRegion: aws.azureRegion, azure, sources: data.sources };
}

/** Prices for a deployed run's region, falling back to the default when the file holds none for it (said in the report). */
export function pricesNear(region: string | undefined): { prices: PriceList; note?: string } {
  if (region && (data.aws as Record<string, unknown>)[region]) return { prices: pricesFor(region) };
  return {
    prices: pricesFor(DEFAULT_PRICE_REGION),
    note: region ? `the price list holds no prices for ${region}: costed at ${DEFAULT_PRICE_REGION} prices` : undefined,
  };
}
