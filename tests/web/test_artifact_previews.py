"""Artifact previews on the run page, in Chromium: images (PNG, JPEG, GIF, WebP, SVG as an image),
text, pretty JSON, CSV as a bounded table, an MLmodel's signature; names and contents stay text, and
an HTML or SVG artifact never runs as a page of this origin."""

from __future__ import annotations

import io
import json
import urllib.parse

import httpx
import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

HOSTILE_NAME = "<img src=x onerror=alert(1)>.txt"
SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="120" height="60" onload="alert('svg')">
<script>alert('svg script')</script><rect width="120" height="60" fill="#2f6fde"/></svg>"""
HTML = "<html><body><h1>report</h1><script>alert('html'); window.pwned = true;</script></body></html>"
SIGNED_MLMODEL = {
    "artifact_path": "signed",
    "flavors": {
        "python_function": {"loader_module": "mlflow.sklearn"},
        "sklearn": {"sklearn_version": "1.5"},
    },
    "signature": {
        "inputs": json.dumps(
            [
                {"type": "double", "name": "tenure_months", "required": True},
                {"type": "string", "name": "plan", "required": False},
            ]
        ),
        "outputs": json.dumps([{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]),
    },
}


def _image(kind: str) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (360, 200), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 20, 330, 170), outline="#344054")
    points = [(40 + i * 29, 170 - int(140 * (1 - 0.8 ** (i + 1)))) for i in range(11)]
    draw.line(points, fill="#2f6fde", width=3)
    out = io.BytesIO()
    image.save(out, format=kind)
    return out.getvalue()


@pytest.fixture(scope="module")
def previewed(two_runs, web_server, tmp_path_factory):
    """Alice's run with a file of every previewable kind, a hostile name, HTML and a large text file."""
    import yaml
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("artifacts")
    files = {
        "learning_curve.png": _image("PNG"),
        "photo.jpg": _image("JPEG"),
        "anim.gif": _image("GIF"),
        "thumb.webp": _image("WEBP"),
        "diagram.svg": SVG.encode(),
        "notes.txt": b"trained on 200 rows\n<b>not bold</b>\n",
        "metrics.json": b'{"accuracy": 0.93, "per_class": {"churn": 0.9, "stay": 0.95}}',
        "predictions.csv": ("customer,score\n" + "".join(f"c{i},{i / 1000}\n" for i in range(800))).encode(),
        HOSTILE_NAME: b"a file with a hostile name",
        "report.html": HTML.encode(),
        "big.log": b"0123456789abcde\n" * (20 * 1024),  # 320 KiB, past the 256 KiB text limit
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    signed = folder / "signed"
    signed.mkdir()
    (signed / "MLmodel").write_text(yaml.safe_dump(SIGNED_MLMODEL))
    client = MlflowClient(tracking_uri=web_server.url)
    run_id = two_runs["runs"][0]["run_id"]
    for name in files:
        client.log_artifact(run_id, str(folder / name))
    client.log_artifact(run_id, str(signed), artifact_path=None)
    note = (
        "Baseline for the churn model: **C=0.1**, liblinear.\n\n- 200 customers\n- see `learning_curve.png`"
    )
    client.set_tag(run_id, "mlflow.note.content", note)
    return run_id


def _preview(page, name: str):
    page.locator(f"#artifacts li.file:has(a[data-path='{name}']) button.preview-button").click()
    panel = page.locator("#artifact-preview")
    expect(panel.locator(".preview-name")).to_have_text(name.rsplit("/", 1)[-1])
    return panel


@pytest.mark.parametrize("name", ["learning_curve.png", "photo.jpg", "anim.gif", "thumb.webp", "diagram.svg"])
def test_images_are_previewed_as_images(page, previewed, name):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"/runs/{previewed}")
    image = _preview(page, name).locator("img.preview-image")
    expect(image).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert not dialogs  # an SVG's script does not run in an <img>
    assert page.locator("#artifact-preview svg, #artifact-preview script").count() == 0  # never inlined


def test_text_json_and_csv_previews(page, previewed):
    page.goto(f"/runs/{previewed}")
    text = _preview(page, "notes.txt").locator("pre.preview-text")
    expect(text).to_have_text("trained on 200 rows\n<b>not bold</b>\n")
    assert page.locator("#artifact-preview b").count() == 0

    pretty = _preview(page, "metrics.json").locator("pre.preview-text")
    expect(pretty).to_contain_text('"per_class": {\n    "churn": 0.9,')

    panel = _preview(page, "predictions.csv")
    table = panel.locator("table.preview-table")
    expect(table.locator("thead th")).to_have_text(["customer", "score"])
    expect(table.locator("tbody tr")).to_have_count(500)
    expect(table.locator("tbody tr").first).to_contain_text("c0")
    expect(panel.locator(".preview-limit")).to_contain_text("500 rows shown; the preview stops at 500 rows")

    big = _preview(page, "big.log")
    expect(big.locator(".preview-limit")).to_contain_text("The first 256 KiB shown")
    shown = big.locator("pre.preview-text").evaluate("pre => pre.textContent.length")
    assert shown == 256 * 1024


def test_the_mlmodel_signature_is_a_table(page, previewed):
    page.goto(f"/runs/{previewed}")
    panel = _preview(page, "signed/MLmodel")
    expect(panel).to_contain_text("Flavors: python_function, sklearn")
    inputs = panel.locator("table.signature[data-part=inputs] tbody tr")
    expect(inputs).to_have_count(2)
    expect(inputs.nth(0)).to_contain_text("tenure_months")
    expect(inputs.nth(0)).to_contain_text("double")
    expect(inputs.nth(1)).to_contain_text("no")
    expect(panel.locator("table.signature[data-part=outputs] tbody tr")).to_contain_text("int64")
    expect(panel.locator("table.signature[data-part=outputs] tbody tr")).to_contain_text("(-1)")

    model_file = page.locator("#artifacts a[data-path='MLmodel']")  # alice's sklearn model: no signature
    model_file.locator("xpath=..").locator("button.preview-button").click()
    expect(page.locator("#artifact-preview")).to_contain_text("This model has no signature")
    expect(page.locator("#artifact-preview")).to_contain_text("Flavors: python_function, sklearn")


def test_a_hostile_file_name_and_an_html_file_stay_text(page, previewed, web_server):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"/runs/{previewed}")
    link = page.locator("#artifacts a[data-path]").filter(has_text=HOSTILE_NAME)
    expect(link).to_have_count(1)
    panel = _preview(page, HOSTILE_NAME)
    expect(panel.locator("pre.preview-text")).to_have_text("a file with a hostile name")
    assert page.locator("#artifacts img:not(.preview-image)").count() == 0

    html = _preview(page, "report.html").locator("pre.preview-text")
    expect(html).to_have_text(HTML)
    # Opened on its own, the HTML file is downloaded, never shown as a page of this origin.
    href = page.locator("#artifacts a[data-path='report.html']").get_attribute("href")
    with page.expect_download():
        page.evaluate("href => { window.location.href = href; }", href)
    assert not dialogs and page.evaluate("window.pwned") is None

    with httpx.Client(base_url=web_server.url) as http:
        stored = urllib.parse.unquote(href.split("/mlflow-artifacts/artifacts/", 1)[1])
        served = http.get("/api/2.0/mlflow-artifacts/artifacts/" + urllib.parse.quote(stored))
        assert served.headers["content-type"] == "text/plain"
        assert served.headers["content-disposition"].startswith("attachment")
        assert served.headers["x-content-type-options"] == "nosniff"
        svg = http.get("/previews/images/" + urllib.parse.quote(stored.replace("report.html", "diagram.svg")))
        assert svg.headers["content-type"] == "image/svg+xml"
        assert svg.headers["content-disposition"].startswith("attachment")
        assert svg.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in svg.headers["content-security-policy"]
        preview = http.get("/previews/artifacts/" + urllib.parse.quote(stored))
        assert preview.headers["x-content-type-options"] == "nosniff"
        assert "&lt;script&gt;" in preview.text and "<script>" not in preview.text
        not_an_image = http.get("/previews/images/" + urllib.parse.quote(stored))
        assert (
            not_an_image.status_code == 400 and not_an_image.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        )
        missing = http.get("/previews/artifacts/" + urllib.parse.quote(stored + ".gone"))
        assert missing.status_code == 404
        escaping = http.get("/previews/artifacts/%2E%2E/%2E%2E/etc/passwd")
        assert escaping.status_code == 400 and escaping.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_run_page_with_a_description_and_a_preview(page, previewed, screenshot):
    page.goto(f"/runs/{previewed}")
    expect(page.locator("#note-body strong")).to_have_text("C=0.1")
    _preview(page, "learning_curve.png")
    page.wait_for_function("() => document.querySelector('#artifact-preview img').naturalWidth > 0")
    expect(page.locator("figure.chart .scatterlayer .trace").first).to_be_attached()
    screenshot(page, "run")


def test_previews_of_model_files_under_the_logged_model(page, previewed, two_runs):
    """MLflow 3 keeps a model's files under the logged model; they preview the same way."""
    page.goto(f"/runs/{previewed}")
    requirements = page.locator("#artifacts a[data-path='requirements.txt']")
    expect(requirements).to_have_count(1)
    assert two_runs["runs"][0]["model_id"] in requirements.get_attribute("href")
    requirements.locator("xpath=..").locator("button.preview-button").click()
    expect(page.locator("#artifact-preview pre.preview-text")).to_contain_text("scikit-learn")
