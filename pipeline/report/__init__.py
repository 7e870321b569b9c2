"""The report of an output folder: ``<out>/report.html``, one self-contained page built from the ledger.

What it shows: the run's summary (units, done and failed, time, iterations, when, mean PSNR
gain), the most common errors, a table of every unit (paged, sorted and filtered in the
browser; it scales to 100,000 rows), and cards for a sample of the images and videos plus the
worst ones (input and output side by side, an aligned zoomed crop, the loss and stopping
criterion curves; for videos a few frames before and after and the per-frame figures).
Nothing is recomputed: figures and curves come from the ledger's lines.

* `write_report(out_dir)`: build and write it (atomically); its path. `make_report` returns
  the summary and the card counts too. Raises `NoLedgerError` for a folder without a ledger.
* Modules: `summary` (units and figures), `table` (the table's JSON), `sample` (which units get
  a card), `svg` (plots), `thumbnails` (images), `image_card`, `video_card`, `sections`,
  `html` and `script` (the page), `build`.
"""

from pipeline.report.build import REPORT_HTML, NoLedgerError, Report, make_report, write_report
from pipeline.report.sample import CardLimits

__all__ = ["REPORT_HTML", "CardLimits", "NoLedgerError", "Report", "make_report", "write_report"]
