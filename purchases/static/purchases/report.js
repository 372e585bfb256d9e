// The sales report: run inline (a plain POST) or as a job (runAsJob), the same table either way.
import { runAsJob, submitJob } from "../jobs/client.js";
import { $, element, money, page } from "./dom.js";
import { refreshJobs } from "./recent.js";
import { capitalised, fieldWords } from "./words.js";

const REPORT_WAIT_MS = 2 * 60 * 1000;

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
      report = await runAsJob(page.reportUrl, body, {
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
      report = await submitJob(page.reportUrl, body, { timeoutMs: REPORT_WAIT_MS });
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
      sentences.push(name === "non_field_errors" ? text : `${capitalised(fieldWords(name))}: ${text}`);
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
