// The TypeScript client against the local stack: connect an account, create posts, page
// through the list, and read a problem answer. Run by infra/clients.sh after `tsc`.
import assert from "node:assert/strict";
import { test } from "node:test";
import { heraldClient } from "../src/herald.js";

const env = (name: string): string => {
  const value = process.env[name];
  assert.ok(value, `${name} is set (source .herald/local.env)`);
  return value;
};

test("creates posts, pages through them and reads a problem", async () => {
  const client = heraldClient(env("HERALD_API_URL"), env("HERALD_API_KEY"));
  const run = `ts${Date.now()}${Math.floor(Math.random() * 1e6)}`;
  const page = `${run}-page`;
  const taught = await fetch(`${env("FAKE_PLATFORMS_URL")}/_admin/tokens`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ platform: "facebook", token: `${run}-token`, account: page }),
  });
  assert.ok(taught.ok);
  const account = await client.POST("/v1/accounts", {
    body: { platform: "facebook", external_id: page, access_token: `${run}-token` },
  });
  assert.equal(account.response.status, 201);
  assert.ok(account.data);
  const accountId: string = account.data.id;
  const later = new Date(Date.now() + 3_600_000).toISOString();
  const created: string[] = [];
  for (const i of [0, 1, 2]) {
    const { data, response } = await client.POST("/v1/posts", {
      params: { header: { "Idempotency-Key": `${run}-${i}` } },
      body: { text: `from TypeScript ${i}`, scheduled_at: later, targets: [{ account_id: accountId }] },
    });
    assert.equal(response.status, 201);
    assert.ok(data);
    assert.equal(data.status, "scheduled");
    created.push(data.id);
  }

  // Two at a time, newest first, until all three are seen (other tests post too).
  const seen: string[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 50; pages++) {
    const listed = await client.GET("/v1/posts", { params: { query: { limit: 2, cursor } } });
    assert.equal(listed.response.status, 200);
    assert.ok(listed.data && listed.data.items.length <= 2);
    seen.push(...listed.data.items.map((p) => p.id));
    cursor = listed.data.next_cursor ?? undefined;
    if (created.every((id) => seen.includes(id)) || cursor === undefined) break;
  }
  for (const id of created) assert.ok(seen.includes(id), `${id} listed`);
  const [oldest, , newest] = created;
  assert.ok(oldest && newest);
  assert.ok(seen.indexOf(newest) < seen.indexOf(oldest), "newest first");

  const bad = await client.POST("/v1/posts", {
    params: { header: { "Idempotency-Key": `${run}-bad` } },
    body: { text: "fine", targets: [{ account_id: "acc_nobody" }] },
  });
  assert.equal(bad.response.status, 422);
  assert.equal(bad.response.headers.get("content-type"), "application/problem+json");
  const problem = bad.error;
  assert.ok(problem);
  assert.equal(problem.status, 422);
  assert.deepEqual(problem.errors?.map((e) => e.field), ["targets[0].account_id"]);
});
