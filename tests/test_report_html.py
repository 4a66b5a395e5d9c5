"""Each run's report.html: the report.md content as one self-contained page with its plots (metric with intervals,
cost per answer, the confusion matrix of a classification task, loss),
checked in a real headless Chromium where one is installed (Debian's `chromium`)."""
import re
import shutil
import subprocess

import pytest

from protege.config import load_config
from protege.pipeline import Pipeline
from tiny import write_tiny_config

# The error listener goes first in <head>, so an error anywhere in the page is counted; the check runs on load.
LISTEN = """<script>
var errors = [];
window.addEventListener("error", function (e) { errors.push(String(e.message)); }, true);
</script>"""
CHECK = """<script>
window.addEventListener("load", function () {
  var imgs = Array.from(document.images);
  var drawn = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var rows = document.querySelectorAll("table tr").length;
  var out = document.createElement("pre");
  out.id = "check";
  out.textContent = "images " + imgs.length + " drawn " + drawn + " rows " + rows + " errors " + errors.length;
  document.body.appendChild(out);
});
</script>"""


@pytest.fixture(scope="module")
def report(tmp_path_factory, tiny_model_dir):
    from tiny import write_tiny_task

    folder = tmp_path_factory.mktemp("report")
    cfg = load_config(write_tiny_config(folder, tiny_model_dir, write_tiny_task(folder / "task")))
    pipe = Pipeline(cfg, progress=False, echo=lambda m: None)
    pipe.run("report")
    return pipe.stages["report"].path


def test_the_page_holds_the_report_and_its_plots_embedded(report):
    page = (report / "report.html").read_text()
    markdown = (report / "report.md").read_text()
    assert "<h1>tiny: distillation report</h1>" in page
    assert page.count("<table>") == markdown.count("\n|---") and "fine-tuned" in page
    alts = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', page)
    assert len(alts) == 4 and "gold label against predicted" in alts[2]  # metric, cost, confusion, loss
    assert page.index("At a glance") < page.index("Cheap baselines")  # the plots sit under the main table
    assert not re.search(r'(src|href)="https?://', page)  # nothing is fetched


@pytest.mark.skipif(not shutil.which("chromium"), reason="no headless browser: apt-get install chromium")
def test_a_real_browser_renders_the_tables_and_every_image_without_errors(report, tmp_path):
    page = (report / "report.html").read_text().replace("<head>", "<head>" + LISTEN, 1)
    page = page.replace("</body>", CHECK + "</body>")
    (tmp_path / "page.html").write_text(page)
    done = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                           "--dump-dom", f"file://{tmp_path / 'page.html'}"], capture_output=True, text=True,
                          timeout=120)
    found = re.search(r'<pre id="check">images (\d+) drawn (\d+) rows (\d+) errors (\d+)</pre>', done.stdout)
    assert found, done.stdout[-500:] + done.stderr[-500:]
    images, drawn, rows, errors = map(int, found.groups())
    assert images == drawn == 4 and rows > 4 and errors == 0
