"""The page's one inline script: the table of every unit, paged, sorted and filtered in the browser.

It reads the JSON of `pipeline.report.table.table_data` from ``<script id="table-data">`` and
draws one page of rows at a time into ``<table id="units">`` with text nodes only (never
innerHTML), so no value of the ledger can inject markup. Clicking a column's header sorts by it
(again: the other way); missing values sort last either way. Buttons with a
``data-filter-status`` attribute set the status filter (the failures section's "show them").
"""

from __future__ import annotations

TABLE_SCRIPT = r"""
(() => {
  "use strict";
  const data = JSON.parse(document.getElementById("table-data").textContent);
  const columns = data.columns;
  const decode = (value, index) => {
    if (value === null) return null;
    const words = data.vocab[String(index)];
    if (words) return words[value];
    if (value === "inf") return Infinity;
    if (value === "-inf") return -Infinity;
    return value;
  };
  const rows = data.rows.map((row) => row.map(decode));
  const at = (key) => columns.findIndex((column) => column.key === key);
  const statusColumn = at("status");
  const searched = ["id", "task", "status", "stop_reason", "error", "kind"].map(at).filter((index) => index >= 0);
  const haystacks = rows.map((row) => searched.map((index) => (row[index] === null ? "" : String(row[index]))).join("\u0001").toLowerCase());
  const state = { sort: -1, direction: 1, page: 0, size: 50, status: "", text: "" };
  let view = [];

  const table = document.getElementById("units");
  const body = table.tBodies[0];
  const statusSelect = document.getElementById("status-filter");
  const textInput = document.getElementById("text-filter");
  const pageText = document.getElementById("page-text");
  const pageButtons = {};

  const format = (value, column) => {
    if (value === null || value === undefined) return "";
    if (column.type !== "number") return String(value);
    if (value === Infinity) return "\u221e";
    if (value === -Infinity) return "-\u221e";
    if (column.key === "iterations") return String(value);
    return value.toFixed(2);
  };
  const compare = (index, direction) => (a, b) => {
    const x = rows[a][index], y = rows[b][index];
    if (x === y) return a - b;
    if (x === null) return 1;
    if (y === null) return -1;
    if (x < y) return -direction;
    if (x > y) return direction;
    return a - b;
  };

  const refresh = () => {
    const text = state.text.toLowerCase();
    view = [];
    for (let i = 0; i < rows.length; i++) {
      if (state.status && rows[i][statusColumn] !== state.status) continue;
      if (text && !haystacks[i].includes(text)) continue;
      view.push(i);
    }
    if (state.sort >= 0) view.sort(compare(state.sort, state.direction));
    const last = Math.max(0, Math.ceil(view.length / state.size) - 1);
    state.page = Math.min(state.page, last);
    render(last);
  };

  const cell = (value, column, row) => {
    const td = document.createElement("td");
    const shown = format(value, column);
    const anchor = column.key === "id" ? data.cards[value] : undefined;
    if (anchor) {
      const link = document.createElement("a");
      link.href = "#" + anchor;
      link.textContent = shown;
      td.appendChild(link);
    } else {
      td.textContent = shown;
    }
    if (column.type === "number") td.className = "number";
    if (column.key === "error" && shown) td.title = shown;
    return td;
  };

  const render = (last) => {
    const first = state.page * state.size;
    const shown = view.slice(first, first + state.size);
    const fragment = document.createDocumentFragment();
    for (const index of shown) {
      const tr = document.createElement("tr");
      const row = rows[index];
      tr.className = "status-" + String(row[statusColumn] || "unknown");
      columns.forEach((column, c) => tr.appendChild(cell(row[c], column, row)));
      fragment.appendChild(tr);
    }
    body.replaceChildren(fragment);
    const filtered = view.length === rows.length ? "" : " (filtered from " + rows.length + ")";
    pageText.textContent = view.length
      ? "rows " + (first + 1) + "\u2013" + (first + shown.length) + " of " + view.length + filtered + ", page " + (state.page + 1) + " of " + (last + 1)
      : "no rows match" + filtered;
    pageButtons.first.disabled = pageButtons.previous.disabled = state.page === 0;
    pageButtons.next.disabled = pageButtons.last.disabled = state.page >= last;
    table.querySelectorAll("th").forEach((th, c) => {
      th.setAttribute("aria-sort", c === state.sort ? (state.direction > 0 ? "ascending" : "descending") : "none");
    });
  };

  const head = table.tHead.rows[0];
  columns.forEach((column, c) => {
    const th = document.createElement("th");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = column.label;
    button.dataset.column = column.key;
    button.addEventListener("click", () => {
      state.direction = state.sort === c ? -state.direction : 1;
      state.sort = c;
      state.page = 0;
      refresh();
    });
    th.appendChild(button);
    head.appendChild(th);
  });

  const statuses = data.vocab[String(statusColumn)] || [];
  for (const status of statuses) {
    const option = document.createElement("option");
    option.value = option.textContent = status;
    statusSelect.appendChild(option);
  }
  statusSelect.addEventListener("change", () => { state.status = statusSelect.value; state.page = 0; refresh(); });
  let timer = 0;
  textInput.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { state.text = textInput.value.trim(); state.page = 0; refresh(); }, 150);
  });
  for (const name of ["first", "previous", "next", "last"]) {
    const button = document.getElementById("page-" + name);
    pageButtons[name] = button;
    button.addEventListener("click", () => {
      const last = Math.max(0, Math.ceil(view.length / state.size) - 1);
      state.page = { first: 0, previous: Math.max(0, state.page - 1), next: Math.min(last, state.page + 1), last: last }[name];
      render(last);
    });
  }
  document.querySelectorAll("[data-filter-status]").forEach((button) => {
    button.addEventListener("click", () => {
      statusSelect.value = button.dataset.filterStatus;
      state.status = statusSelect.value;
      state.page = 0;
      refresh();
      table.scrollIntoView();
    });
  });
  refresh();
})();
"""
