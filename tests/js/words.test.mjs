// Unit tests of purchases/static/purchases/words.js: node --test tests/js/
//
// The demo page shows kinds, statuses and field names as words a shopper reads.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { errorSentences, fieldWords, kindName, statusWord } from "../../purchases/static/purchases/words.js";

describe("kindName", () => {
  test("names the demo's kinds", () => {
    assert.equal(kindName("purchases.execute"), "Purchase");
    assert.equal(kindName("purchases.sales_report"), "Sales report");
  });

  test("puts an unknown kind's last part in words", () => {
    assert.equal(kindName("imports.csv_upload"), "Csv upload");
    assert.equal(kindName("cleanup"), "Cleanup");
  });
});

test("statusWord capitalises like the admin", () => {
  assert.equal(statusWord("completed"), "Completed");
  assert.equal(statusWord("cancelled"), "Cancelled");
});

test("fieldWords says the report's dates in words", () => {
  assert.equal(fieldWords("date_from"), "the start date");
  assert.equal(fieldWords("date_to"), "the end date");
  assert.equal(fieldWords("gift_note"), "the gift note");
});

describe("errorSentences", () => {
  test("names the innermost field, without list positions", () => {
    const body = { goods: [{}, { quantity: ["Ensure this value is less than or equal to 10."] }] };
    assert.deepEqual(errorSentences(body), ["The quantity: Ensure this value is less than or equal to 10."]);
  });

  test("keeps non-field errors and plain messages as they are", () => {
    const body = { non_field_errors: ["Choose at least one product."], date_to: ["Enter a valid date."] };
    assert.deepEqual(errorSentences(body), ["Choose at least one product.", "The end date: Enter a valid date."]);
    assert.deepEqual(errorSentences(["Unknown product id(s): 9."]), ["Unknown product id(s): 9."]);
  });

  test("never shows an API field name", () => {
    const sentences = errorSentences({ date_from: ["Must not be after the end date."], payment_token: ["Required."] });
    assert.ok(sentences.every((sentence) => !/_/.test(sentence)), sentences.join(" | "));
  });
});
