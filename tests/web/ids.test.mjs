// Unit tests of the client's event-id rules (lib/ids.js), run by test_ids.py with node --test.
import assert from "node:assert/strict";
import { test } from "node:test";
import { compareIds, cursorAfter, isNewer, parseId } from "../../tocsin/web/static/tocsin/lib/ids.js";

test("parses epoch ids, position 0 and plain decimals", () => {
  assert.deepEqual(parseId("3f9a02c1-42"), { epoch: "3f9a02c1", seq: 42 });
  assert.deepEqual(parseId("0"), { epoch: "", seq: 0 });
  assert.deepEqual(parseId("42"), { epoch: "", seq: 42 });
  for (const bad of ["", "-1", "ABC-1", "a-b", "x".repeat(17) + "-1", "1.5", null, undefined, {}]) {
    assert.equal(parseId(bad), null, String(bad));
  }
});

test("seqs compare within one epoch", () => {
  assert.equal(isNewer("e1-43", "e1-42"), true);
  assert.equal(isNewer("e1-42", "e1-42"), false);
  assert.equal(isNewer("e1-9", "e1-10"), false); // numerically, not as text
  assert.equal(isNewer("10", "9"), true); // plain decimals (older servers)
  assert.ok(compareIds("e1-9", "e1-10") < 0);
  assert.ok(compareIds("e1-10", "e1-9") > 0);
});

test("seq 0 fits every epoch", () => {
  assert.equal(isNewer("e1-1", "0"), true);
  assert.equal(isNewer("0", "e1-1"), false);
  assert.equal(isNewer("0", "0"), false);
  assert.ok(compareIds("0", "e1-1") < 0);
});

test("another epoch is newer by definition", () => {
  assert.equal(isNewer("e2-1", "e1-500"), true);
  assert.equal(isNewer("e1-500", "e2-1"), true);
  assert.equal(isNewer("e2-1", "42"), true);
  assert.equal(compareIds("e2-1", "e1-500"), 0); // no order across epochs
});

test("anything is newer than no position; junk is never newer", () => {
  assert.equal(isNewer("e1-1", null), true);
  assert.equal(isNewer("junk", null), false);
  assert.equal(isNewer(undefined, "e1-1"), false);
});

test("the read-all cursor covers up to and including the id", () => {
  assert.equal(cursorAfter("e1-42"), "e1-43");
  assert.equal(cursorAfter("42"), "43");
  assert.equal(cursorAfter("0"), "0");
  assert.equal(cursorAfter(null), "0");
});
