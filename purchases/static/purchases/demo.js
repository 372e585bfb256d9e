// The demo shop: buy with submitJob, show the job's progress, cancel it, list recent jobs;
// run the sales report inline or as a job (runAsJob) and show the same table either way.
import { cancelJob, runAsJob, submitJob } from "../jobs/client.js";

const JOBS_REFRESH_MS = 5000;
const PRODUCTS_REFRESH_MS = 15000;
// The purchase goes on if the page stops waiting; the jobs list still shows it.
const PURCHASE_WAIT_MS = 5 * 60 * 1000;
const REPORT_WAIT_MS = 2 * 60 * 1000;

const root = document.getElementById("shop");
const urls = {
  purchase: root.dataset.purchaseUrl,
  products: root.dataset.productsUrl,
  jobs: root.dataset.jobsUrl,
  report: root.dataset.reportUrl,
};
const currency = root.dataset.currency;
const $ = (id) => document.getElementById(id);
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
const jobsBody = $("jobs-body");
const jobsUpdated = $("jobs-updated");

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
    const order = await submitJob(urls.purchase, body, {
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

// --- Sales report ---------------------------------------------------------------------

const reportForm = $("report-form");
const reportButtons = [$("report-run-now"), $("report-run-job")];
const reportError = $("report-error");
const reportFields = { date_from: $("report-from"), date_to: $("report-to") };
const reportProgress = $("report-progress");
const reportBar = $("report-progress-bar");
const reportPercent = $("report-progress-percent");
const reportMessage = $("report-progress-message");
const reportSteps = $("report-steps");
const reportResult = $("report-result");
let reportRunning = false;

reportForm.addEventListener("submit", (event) => {
  event.preventDefault();
  runReport("inline");
});
$("report-run-job").addEventListener("click", () => runReport("job"));

/** Run the report: "inline" is a plain POST, "job" asks for a job and follows its progress. */
async function runReport(way) {
  if (reportRunning) return;
  reportRunning = true;
  setReportDisabled(true);
  clearReportErrors();
  reportResult.hidden = true;
  reportProgress.hidden = way !== "job";
  reportSteps.replaceChildren();
  const body = reportBody();
  const run = { way, jobUrl: null, reports: 0 };
  let show;
  try {
    let report;
    if (way === "job") {
      showReportProgress({ percentage: 0, message: "Sending the request…", status: "pending" }, false);
      report = await runAsJob(urls.report, body, {
        timeoutMs: REPORT_WAIT_MS,
        onSubmitted: ({ url }) => {
          run.jobUrl = url;
          refreshJobs();
        },
        onProgress: (progress) => {
          run.reports += 1;
          showReportProgress(progress, true);
        },
      });
    } else {
      report = await submitJob(urls.report, body, { timeoutMs: REPORT_WAIT_MS });
    }
    show = () => showReport(report, run);
  } catch (error) {
    show = () => showReportError(error);
  }
  // Enabled again first: the outcome may move focus to a date input.
  reportRunning = false;
  setReportDisabled(false);
  show();
  if (way === "job") refreshJobs();
}

function reportBody() {
  const body = {};
  for (const [name, input] of Object.entries(reportFields)) {
    if (input.value) body[name] = input.value;
  }
  return body;
}

function showReportProgress({ percentage, message, status }, logged) {
  if (status === "pending" && percentage === 0) {
    reportBar.removeAttribute("value"); // indeterminate: waiting for a worker
    reportPercent.textContent = "";
  } else {
    reportBar.value = percentage;
    reportPercent.textContent = `${percentage}%`;
  }
  const text = message || (status === "pending" ? "Waiting for a worker…" : status === "completed" ? "Done" : "Working…");
  reportMessage.textContent = text;
  // Every report the page received, kept after the end: a fast job may skip steps.
  if (logged) reportSteps.append(element("li", { "data-percentage": String(percentage) }, `${percentage}% ${text}`));
}

function showReport(report, run) {
  const rows = report.products.map((product) =>
    element("tr", { "data-product-id": String(product.product_id), "data-testid": "report-row" }, [
      element("th", { scope: "row" }, product.name),
      element("td", { class: "num" }, String(product.quantity)),
      element("td", { class: "num" }, money(product.total, report.currency)),
    ]),
  );
  if (rows.length === 0) {
    rows.push(element("tr", {}, element("td", { colspan: "3", class: "hint" }, "No paid orders in these dates.")));
  }
  const table = element("table", { class: "data order-lines report-table", "data-testid": "report-table" }, [
    element("caption", {}, "Sold per product"),
    element("thead", {}, [
      element("tr", {}, [
        element("th", { scope: "col" }, "Product"),
        element("th", { scope: "col", class: "num" }, "Quantity"),
        element("th", { scope: "col", class: "num" }, "Total"),
      ]),
    ]),
    element("tbody", {}, rows),
    element("tfoot", {}, [
      element("tr", {}, [
        element("th", { scope: "row", colspan: "2" }, "Grand total"),
        element("td", { class: "num total", "data-testid": "report-total" }, money(report.total, report.currency)),
      ]),
    ]),
  ]);
  const orders = `${report.orders} paid order${report.orders === 1 ? "" : "s"}`;
  const how = run.way === "job"
    ? `Ran as a job${run.jobUrl ? ` (${jobId(run.jobUrl)})` : ""}, ${run.reports} progress report${run.reports === 1 ? "" : "s"} received.`
    : "Answered at once by the server.";
  reportResult.className = "result result-success";
  reportResult.dataset.way = run.way;
  reportResult.replaceChildren(
    element("h3", {}, "Sales report"),
    element("p", { "data-testid": "report-range" }, [
      "From ",
      element("time", { datetime: report.date_from }, report.date_from),
      " to ",
      element("time", { datetime: report.date_to }, report.date_to),
      `: ${orders}.`,
    ]),
    table,
    element("p", { class: "hint", "data-testid": "report-how" }, how),
  );
  reportResult.hidden = false;
  reportResult.focus();
}

function showReportError(error) {
  if (error.status === 400 && error.body && typeof error.body === "object" && !error.body.detail) {
    // Refused before anything ran: the messages go under the dates they are about.
    reportProgress.hidden = true;
    reportResult.hidden = true;
    reportError.textContent = `Please check the dates. ${showFieldErrors(error.body)}`;
    const invalid = Object.values(reportFields).find((input) => input.getAttribute("aria-invalid") === "true");
    (invalid ?? reportForm.querySelector("input")).focus();
    return;
  }
  let title = "The report could not be made";
  let detail = error.message;
  if (error.job) {
    title = error.code === "cancelled" ? "The report was cancelled" : "The report failed";
    showReportProgress({ ...error.job.progress, status: error.job.status }, false);
  } else if (error.name === "TimeoutError") {
    title = "Still working";
    detail = "The report is taking longer than usual; its job goes on in the list below.";
  } else if (error.status === 401 || error.status === 403) {
    title = "You are signed out";
    detail = "Reload the page and sign in again.";
  } else if (error.code === "network_error") {
    title = "No answer from the server";
    detail = "Check your connection and try again.";
  }
  if (!error.job) reportProgress.hidden = true;
  const parts = [element("h3", {}, title)];
  if (detail) parts.push(element("p", { class: "error-detail" }, detail));
  if (error.code && error.code !== "invalid") parts.push(element("p", { class: "hint" }, `Code: ${error.code}`));
  reportResult.className = "result result-error";
  delete reportResult.dataset.way;
  reportResult.replaceChildren(...parts);
  reportResult.hidden = false;
  reportResult.focus();
}

/** Put each field's errors under its input; return all of them as one sentence per field. */
function showFieldErrors(errors) {
  const sentences = [];
  for (const [name, messages] of Object.entries(errors)) {
    const text = [].concat(messages).map(String).join(" ");
    const input = reportFields[name];
    if (input) {
      input.setAttribute("aria-invalid", "true");
      $(input.getAttribute("aria-describedby")).textContent = text;
      sentences.push(`${input.labels[0].textContent}: ${text}`);
    } else {
      sentences.push(name === "non_field_errors" ? text : `${name}: ${text}`);
    }
  }
  return sentences.join(" ");
}

function clearReportErrors() {
  reportError.textContent = "";
  for (const input of Object.values(reportFields)) {
    input.removeAttribute("aria-invalid");
    $(input.getAttribute("aria-describedby")).textContent = "";
  }
}

function setReportDisabled(disabled) {
  for (const control of [...reportButtons, ...Object.values(reportFields)]) control.disabled = disabled;
  reportForm.setAttribute("aria-busy", String(disabled));
}

function jobId(url) {
  const parts = url.split("/").filter(Boolean);
  return parts[parts.length - 1].slice(0, 8);
}

// --- Products and recent jobs -------------------------------------------------------

async function refreshProducts() {
  const products = await getJSON(urls.products);
  if (!products) return;
  for (const product of products) {
    const cell = form.querySelector(`tr[data-product-id="${product.id}"] [data-stock]`);
    if (!cell) continue;
    cell.textContent = String(product.stock);
    cell.classList.toggle("out", product.stock === 0);
  }
}

let jobsLoading = false;

async function refreshJobs() {
  if (jobsLoading) return;
  jobsLoading = true;
  try {
    const page = await getJSON(`${urls.jobs}?page_size=10`);
    if (!page) return;
    const rows = page.results.map(jobRow);
    if (rows.length === 0) {
      rows.push(element("tr", {}, [element("td", { colspan: "5", class: "hint" }, "No jobs yet.")]));
    }
    jobsBody.replaceChildren(...rows);
    jobsUpdated.textContent = ` (last at ${new Date().toLocaleTimeString()})`;
  } finally {
    jobsLoading = false;
  }
}

function jobRow(job) {
  const created = new Date(job.created_at);
  let progress = job.progress.message || "";
  if (job.error) progress = `${job.error.code}: ${job.error.message}`;
  else if (job.status === "processing") progress = `${job.progress.percentage}% ${progress}`;
  else if (job.status === "completed" && job.result?.order_id) progress = `Order #${job.result.order_id}`;
  return element("tr", { "data-job-id": job.id }, [
    element("td", {}, element("code", { title: job.id }, job.id.slice(0, 8))),
    element("td", {}, job.kind),
    element("td", {}, element("span", { class: `badge badge-${job.status}` }, job.status)),
    element("td", {}, progress),
    element("td", {}, element("time", { datetime: job.created_at }, created.toLocaleString())),
  ]);
}

async function getJSON(url) {
  try {
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (response.ok) return response.json();
    if (response.status === 401 || response.status === 403) {
      jobsUpdated.textContent = " (paused: you are signed out; reload the page)";
    }
  } catch {
    // Offline for a moment: the next refresh tries again.
  }
  return null;
}

// --- Helpers -----------------------------------------------------------------------

function element(tag, attributes, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...(Array.isArray(children) ? children : [children]));
  return node;
}

function money(amount, code = currency) {
  return `${amount} ${code}`;
}

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
