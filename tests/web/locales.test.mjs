// The shipped catalogues (lib/locales/) against the English one: the same keys, the same
// {placeholders} in every form, plural entries with the forms Intl.PluralRules of the
// language uses (and `other`), and the Translator filling them in.
import assert from "node:assert/strict";
import { test } from "node:test";

import { translator } from "../../tocsin/web/static/tocsin/lib/i18n.js";
import en from "../../tocsin/web/static/tocsin/lib/locales/en.js";

const LOCALES = ["de", "fr", "es", "ja"];
const forms = (v) => (typeof v === "string" ? [v] : Object.values(v));
const holes = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort().join(",");

for (const tag of LOCALES) {
  test(`${tag}: every key, the same placeholders, its plural forms`, async () => {
    const cat = (await import(`../../tocsin/web/static/tocsin/lib/locales/${tag}.js`)).default;
    assert.deepEqual(Object.keys(cat).sort(), Object.keys(en).sort());
    const categories = new Intl.PluralRules(tag).resolvedOptions().pluralCategories;
    for (const [key, value] of Object.entries(en)) {
      const mine = cat[key];
      assert.equal(typeof mine, typeof value, key);
      const want = new Set(forms(value).map(holes));
      for (const f of forms(mine)) {
        assert.ok(f.trim(), `${tag} ${key}: empty`);
        assert.ok(want.has(holes(f)), `${tag} ${key}: placeholders of "${f}"`);
      }
      if (typeof mine !== "string") {
        assert.ok("other" in mine, `${tag} ${key}: no "other"`);
        for (const c of Object.keys(mine)) assert.ok(categories.includes(c), `${tag} ${key}: ${c}`);
      }
    }
  });
}

test("plurals, lists and fallbacks", () => {
  assert.equal(translator("fr").t("bell.labelUnread", { count: 1 }), "Notifications, 1 non lue");
  assert.equal(translator("fr").t("bell.labelUnread", { count: 2 }), "Notifications, 2 non lues");
  assert.equal(translator("de-AT").t("bell.markAll"), "Alle als gelesen markieren");
  assert.equal(translator("xx").t("bell.markAll"), "Mark all as read");
  assert.equal(translator("en").join(["Eve", "Dana"]), "Eve and Dana");
  assert.equal(translator("de").join(["Eve", "Dana"]), "Eve und Dana");
  assert.equal(translator("en").duration(3 * 3600), "3 hours");
  assert.equal(translator("en", { "bell.markAll": "Clear" }).t("bell.markAll"), "Clear");
});
