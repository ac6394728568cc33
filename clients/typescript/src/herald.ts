// A typed Herald client: openapi-fetch over the types openapi-typescript generated from the
// API's OpenAPI document (gen/schema.d.ts, written by infra/clients.sh).
import createClient from "openapi-fetch";
import type { components, paths } from "../gen/schema.js";

export type Problem = components["schemas"]["Problem"];

export function heraldClient(baseUrl: string, apiKey: string) {
  return createClient<paths>({
    baseUrl,
    headers: { Authorization: `Bearer ${apiKey}` },
  });
}
