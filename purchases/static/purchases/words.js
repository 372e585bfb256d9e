// What the shopper reads instead of the API's names: job kinds, statuses and field names.
// Pure functions, no DOM: tests/js/words.test.mjs runs them under node.

const KIND_NAMES = {
  "purchases.execute": "Purchase",
  "purchases.sales_report": "Sales report",
};

const FIELD_WORDS = {
  date_from: "the start date",
  date_to: "the end date",
  goods: "the products",
  product_id: "the product",
  quantity: "the quantity",
  payment_token: "the payment card",
};

/** "Purchase" for `purchases.execute`; an unknown kind's last part in words ("data_import" -> "Data import"). */
export function kindName(kind) {
  if (KIND_NAMES[kind]) return KIND_NAMES[kind];
  const last = String(kind).split(".").pop().replaceAll("_", " ").trim();
  return capitalised(last || String(kind));
}

/** A job status as the admin shows it too: "Completed" for `completed`. */
export function statusWord(status) {
  return capitalised(String(status));
}

/** "the end date" for `date_to`; an unknown name with its underscores as spaces. */
export function fieldWords(name) {
  return FIELD_WORDS[name] || `the ${String(name).replaceAll("_", " ")}`;
}

/**
 * DRF field errors as sentences a shopper reads, one per message:
 * `{"goods": [{"quantity": ["Too many."]}]}` -> ["The quantity: Too many."].
 * The innermost field names the problem; list positions are left out.
 */
export function errorSentences(errors, field = "") {
  if (typeof errors === "string") return [field ? `${capitalised(fieldWords(field))}: ${errors}` : errors];
  if (Array.isArray(errors)) return errors.flatMap((item) => errorSentences(item, field));
  if (errors && typeof errors === "object") {
    return Object.entries(errors).flatMap(([name, item]) =>
      errorSentences(item, name === "non_field_errors" ? field : name),
    );
  }
  return [];
}

/** `text` with its first letter upper-case. */
export function capitalised(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
