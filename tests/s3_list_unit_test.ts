/**
 * Parsing one ListObjectsV2 answer (src/storage/s3_http.ts `parseListPage`): keys with entities
 * decoded, sizes, and the continuation token only while the listing is truncated. The end-to-end
 * listing over more than 1,000 keys against RGW is in tests/restore_listing_test.ts.
 */
import assert from "node:assert/strict";
import { parseListPage } from "../src/storage/s3_http.ts";

function answer(contents: string[], truncated: boolean, token?: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>walsync-test</Name><Prefix>p/</Prefix><KeyCount>${contents.length}</KeyCount><MaxKeys>1000</MaxKeys>
  <IsTruncated>${truncated}</IsTruncated>${
    token ? `<NextContinuationToken>${token}</NextContinuationToken>` : ""
  }
  ${contents.join("\n  ")}
</ListBucketResult>`;
}

function entry(key: string, size: number | null): string {
  const sizeXml = size === null ? "" : `<Size>${size}</Size>`;
  return `<Contents><Key>${key}</Key><LastModified>2026-11-30T10:00:00.000Z</LastModified>` +
    `<ETag>&quot;abc&quot;</ETag>${sizeXml}<StorageClass>STANDARD</StorageClass></Contents>`;
}

Deno.test("parseListPage: keys decoded, sizes read, no token on the last page", () => {
  const page = parseListPage(answer([
    entry("p/app/snapshots/00000001-20261130100000000.db", 4096),
    entry("p/a &amp; b &lt;1&gt; &quot;q&quot; &apos;s&apos;/wal/x", 0),
    entry("p/no-size", null),
  ], false));
  assert.deepEqual(page.objects.map((o) => o.key), [
    "p/app/snapshots/00000001-20261130100000000.db",
    `p/a & b <1> "q" 's'/wal/x`,
    "p/no-size",
  ]);
  assert.deepEqual(page.objects.slice(0, 2).map((o) => o.size), [4096, 0]);
  assert.ok(Number.isNaN(page.objects[2].size));
  assert.equal(page.next, null);
});

Deno.test("parseListPage: a truncated page gives its continuation token, decoded", () => {
  const page = parseListPage(answer([entry("p/k", 1)], true, "1/abc&amp;def=="));
  assert.equal(page.next, "1/abc&def==");
  // A token present while IsTruncated is false is not followed.
  assert.equal(parseListPage(answer([entry("p/k", 1)], false, "stale")).next, null);
});

Deno.test("parseListPage: an empty listing", () => {
  assert.deepEqual(parseListPage(answer([], false)), { objects: [], next: null });
});
