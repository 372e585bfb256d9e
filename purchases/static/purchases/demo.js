// The demo shop: buy with submitJob, show the job's progress, cancel it. The sales report
// (report.js) and the self-refreshing lists (recent.js) are modules of their own.
import { cancelJob, submitJob } from "../jobs/client.js";
import { $, element, money, page } from "./dom.js";
import { refreshJobs, refreshProducts } from "./recent.js";
import "./report.js";
import { errorSentences } from "./words.js";

const JOBS_REFRESH_MS = 5000;
const PRODUCTS_REFRESH_MS = 15000;
// The purchase goes on if the page stops waiting; the jobs list still shows it.
const PURCHASE_WAIT_MS = 5 * 60 * 1000;

const form = $("purchase-form");
const buyButton = $("buy");
const formError = $("form-error");
const purchaseSection = $("purchase");
const idle = $("purchase-idle");
const progressBox = $("purchase-progress");
const progressBar = $("progress-bar");
const progressPercent = $("progress-percent");
const progressMessage = $("progress-message");
const steps = $("progress-steps");
const cancelNote = $("cancel-note");
const cancelButton = $("cancel");
const resultBox = $("purchase-result");

/** The purchase running now: its job URL once accepted, and what Cancel did. */
let current = null;

const ERRORS = {
  insufficient_stock: ["Not enough stock", "Nothing was charged. Lower the quantity and try again."],
  payment_declined: ["Payment declined", "Nothing was charged and the stock was put back."],
  cancelled: ["Purchase cancelled", "The purchase was cancelled: nothing was charged and no stock was taken."],
  product_unavailable: ["Product unavailable", "Reload the page to see the current products."],
  timeout: ["The purchase took too long", "It was stopped; nothing was charged. Try again later."],
};

// --- Buying ---------------------------------------------------------------------

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (current) return;
  const goods = chosenGoods();
  if (goods.length === 0) {
    formError.textContent = "Choose a quantity of at least one product.";
    form.querySelector("input.quantity")?.focus();
    return;
  }
  formError.textContent = "";
  buy({ goods, payment_token: $("payment-token").value });
});

function chosenGoods() {
  return [...form.querySelectorAll("input.quantity")]
    .map((input) => ({ product_id: Number(input.dataset.productId), quantity: Number(input.value) }))
    .filter((line) => Number.isInteger(line.quantity) && line.quantity > 0);
}

async function buy(body) {
  current = { url: null, controller: new AbortController(), cancelRequested: false };
  startProgressDisplay();
  let outcome;
  try {
    const order = await submitJob(page.purchaseUrl, body, {
      // A network hiccup may repeat the POST; the key makes that safe.
      idempotencyKey: newIdempotencyKey(),
      signal: current.controller.signal,
      timeoutMs: PURCHASE_WAIT_MS,
      onSubmitted: ({ url }) => {
        current.url = url;
        cancelButton.hidden = false;
        cancelButton.disabled = false;
        refreshJobs();
      },
      onProgress: (progress) => {
        showProgress(progress);
        refreshJobs();
      },
    });
    outcome = (cancelRequested) => showOrder(order, cancelRequested);
  } catch (error) {
    outcome = () => {
      stopProgressDisplay(error);
      showError(error);
    };
  }
  const cancelRequested = current.cancelRequested;
  current = null;
  cancelButton.hidden = true;
  cancelNote.textContent = "";
  purchaseSection.removeAttribute("aria-busy");
  setFormDisabled(false);
  outcome(cancelRequested);
  resultBox.focus();
  refreshProducts();
  refreshJobs();
}

function startProgressDisplay() {
  setFormDisabled(true);
  purchaseSection.setAttribute("aria-busy", "true");
  idle.hidden = true;
  resultBox.hidden = true;
  resultBox.replaceChildren();
  steps.replaceChildren();
  cancelNote.textContent = "";
  progressBox.hidden = false;
  progressBar.removeAttribute("value");
  progressPercent.textContent = "";
  progressMessage.textContent = "Sending your order…";
  // Buy is now disabled: keep keyboard focus here rather than lost on the page
  // (not on Cancel, where a second Enter would cancel the purchase).
  progressBox.focus();
}

function showProgress({ percentage, message, status }) {
  if (status === "pending" && percentage === 0) {
    progressBar.removeAttribute("value"); // indeterminate: waiting for a worker
    progressPercent.textContent = "";
  } else {
    progressBar.value = percentage;
    progressPercent.textContent = `${percentage}%`;
  }
  if (status === "failed" || status === "cancelled") {
    // The job keeps the message of the step it stopped at.
    const stopped = status === "failed" ? "Failed" : "Cancelled";
    progressMessage.textContent = message ? `${stopped} at: ${message}` : stopped;
    return;
  }
  progressMessage.textContent = message || (status === "pending" ? "Waiting for a worker…" : "Working…");
  if (message && steps.lastElementChild?.textContent !== message) {
    steps.append(element("li", {}, message));
  }
}

/** Leave the progress display in a final state when the wait ended without a last report. */
function stopProgressDisplay(error) {
  if (error.job) {
    const { progress, status } = error.job;
    showProgress({ percentage: progress?.percentage ?? 0, message: progress?.message ?? "", status });
  } else if (error.status >= 400 && error.status < 500) {
    progressBox.hidden = true; // refused: no job was started
  } else {
    if (!progressBar.hasAttribute("value")) progressBar.value = 0;
    progressMessage.textContent = "Stopped waiting";
  }
}

// --- Cancelling -----------------------------------------------------------------

cancelButton.addEventListener("click", async () => {
  const purchase = current;
  if (!purchase || !purchase.url) return;
  cancelButton.disabled = true;
  cancelNote.textContent = "Cancelling…";
  try {
    const job = await cancelJob(purchase.url);
    if (job.status === "cancelled") {
      // Stop waiting at once; the cancelled job is the outcome.
      purchase.controller.abort(jobFailure(job));
    } else {
      purchase.cancelRequested = true;
      cancelNote.textContent =
        "Cancel requested: the purchase stops at its next step, unless the payment is already being taken.";
    }
  } catch (error) {
    if (error.code === "job_finished") {
      cancelNote.textContent = "Too late to cancel: the purchase has already finished.";
    } else {
      cancelNote.textContent = `Could not cancel: ${error.message}`;
      cancelButton.disabled = false;
    }
  }
});

function jobFailure(job) {
  const error = new Error(job.error?.message || "The job was cancelled.");
  error.code = job.error?.code || job.status;
  error.job = job;
  return error;
}

// --- Outcomes ---------------------------------------------------------------------

function showOrder(order, cancelRequested) {
  const rows = order.lines.map((line) =>
    element("tr", {}, [
      element("th", { scope: "row" }, line.name),
      element("td", { class: "num" }, String(line.quantity)),
      element("td", { class: "num" }, money(line.unit_price)),
      element("td", { class: "num" }, money(line.line_total)),
    ]),
  );
  const table = element("table", { class: "data order-lines" }, [
    element("caption", {}, "What you bought"),
    element("thead", {}, [
      element("tr", {}, [
        element("th", { scope: "col" }, "Product"),
        element("th", { scope: "col", class: "num" }, "Quantity"),
        element("th", { scope: "col", class: "num" }, "Unit price"),
        element("th", { scope: "col", class: "num" }, "Line total"),
      ]),
    ]),
    element("tbody", {}, rows),
    element("tfoot", {}, [
      element("tr", {}, [
        element("th", { scope: "row", colspan: "3" }, "Total"),
        element("td", { class: "num total" }, money(order.total, order.currency)),
      ]),
    ]),
  ]);
  const parts = [
    element("h3", {}, `Order #${order.order_id} confirmed`),
    element("p", {}, `Thank you! ${money(order.total, order.currency)} was charged to your card.`),
  ];
  if (cancelRequested) {
    parts.push(
      element("p", { class: "note" }, "Your cancel came too late: the payment had already been taken, so the order went through."),
    );
  }
  parts.push(table);
  showResult("result-success", parts);
  for (const input of form.querySelectorAll("input.quantity")) input.value = "0";
}

function showError(error) {
  let title;
  let advice = "";
  let detail = error.message;
  if (error.job) {
    [title, advice] = ERRORS[error.code] || ["Purchase failed", "Nothing was charged. Try again later."];
    if (error.code === "cancelled") detail = "";
  } else if (error.name === "TimeoutError") {
    title = "Still working";
    advice = "This is taking longer than usual. The purchase goes on: watch its job in the list below.";
    detail = "";
  } else if (error.status === 400) {
    title = "Please check your order";
    // Field errors name the API's fields (goods, quantity): say them in words.
    if (error.body && typeof error.body === "object" && !error.body.detail) detail = errorSentences(error.body).join(" ");
  } else if (error.status === 401 || error.status === 403) {
    title = "You are signed out";
    advice = "Reload the page and sign in again.";
  } else if (error.code === "network_error") {
    title = "No answer from the server";
    advice = "Check your connection. If the order was sent it goes on: see your recent jobs below.";
    detail = "";
  } else {
    title = "Something went wrong";
  }
  const parts = [element("h3", {}, title)];
  if (detail) parts.push(element("p", { class: "error-detail" }, detail));
  if (advice) parts.push(element("p", {}, advice));
  if (error.code && error.code !== "invalid") parts.push(element("p", { class: "hint" }, `Code: ${error.code}`));
  showResult(error.code === "cancelled" ? "result-cancelled" : "result-error", parts);
}

function showResult(kind, children) {
  resultBox.className = `result ${kind}`;
  resultBox.replaceChildren(...children);
  resultBox.hidden = false;
}

// --- Helpers -----------------------------------------------------------------------

function setFormDisabled(disabled) {
  for (const control of form.querySelectorAll("input, select, button")) control.disabled = disabled;
  buyButton.textContent = disabled ? "Buying…" : "Buy";
}

function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // randomUUID needs a secure context (https or localhost); a random hex key does as well.
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

refreshJobs();
setInterval(refreshJobs, JOBS_REFRESH_MS);
setInterval(refreshProducts, PRODUCTS_REFRESH_MS);
