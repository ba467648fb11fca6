"""The description's Markdown and the previews' parsing, without a browser: what may become markup,
what stays text, and the bounds of a preview."""

from __future__ import annotations

import json

import pytest
from trackledger.api.web.notes import render_note
from trackledger.api.web.previews import CSV_MAX_COLUMNS, CSV_MAX_ROWS, _csv_table, _mlmodel, _text, kind_of


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        '<a href="javascript:alert(1)">x</a>',
        "<iframe src=//evil.example></iframe>",
        "<svg onload=alert(1)>",
    ],
)
def test_raw_html_in_a_note_is_text(text):
    html = render_note(text)
    assert "<" + text[1:] not in html
    assert "&lt;" in html


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "java&#x73;cript:alert(1)",
        "&#106;avascript:alert(1)",
        "vbscript:msgbox(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "//evil.example/x",
    ],
)
def test_unsafe_links_are_not_links(link):
    assert "href" not in render_note(f"[x]({link})")
    assert "<img" not in render_note(f"![x]({link})")


def test_safe_markdown_renders():
    html = render_note(
        "# T\n\n**b** [docs](https://mlflow.org) [run](/runs/1) [mail](mailto:a@b.example)\n\n![p](x.png)"
    )
    assert "<h1>T</h1>" in html and "<strong>b</strong>" in html
    assert '<a href="https://mlflow.org" rel="noopener noreferrer nofollow">docs</a>' in html
    assert 'href="/runs/1"' in html and 'href="mailto:a@b.example"' in html
    assert "<img" not in html  # images in notes are links, never fetched by every reader
    assert render_note(None) == "" and render_note("") == ""


def test_kinds_by_name():
    assert kind_of("MLmodel") == "mlmodel"
    assert kind_of("a.PNG") == kind_of("b.svg") == kind_of("c.webp") == "image"
    assert kind_of("m.json") == "json" and kind_of("t.tsv") == "csv"
    assert kind_of("page.html") == "text" and kind_of("conda.yaml") == "text"
    assert kind_of("model.pkl") is None and kind_of("weights.bin") is None


def test_csv_is_bounded_in_rows_and_columns_and_a_cut_row_is_dropped():
    wide = ",".join(f"c{i}" for i in range(CSV_MAX_COLUMNS + 5)) + "\n"
    table = _csv_table(wide + "1,2\n" * (CSV_MAX_ROWS + 10), cut=False, name="x.csv")
    assert len(table["header"]) == CSV_MAX_COLUMNS and table["more_columns"]
    assert len(table["rows"]) == CSV_MAX_ROWS and table["more_rows"]
    cut = _csv_table("a,b\n1,2\n3,4", cut=True, name="x.csv")  # "3,4" may be half a row
    assert cut["rows"] == [["1", "2"]] and cut["more_rows"]
    assert _csv_table("a\tb\n1\t2\n", cut=False, name="x.tsv")["rows"] == [["1", "2"]]
    assert _csv_table("a\n" + "x" * 200_000 + "\n", cut=False, name="x.csv") is None  # past csv's field limit


def test_text_cut_inside_a_character_drops_it():
    data = "é".encode() * 3
    assert _text(data[:5], size=6) == ("éé", True)
    assert _text(data, size=6) == ("ééé", False)


def test_mlmodel_signature_rows_and_unreadable_files():
    spec = {"inputs": json.dumps([{"type": "long", "name": "x", "required": True}]), "params": None}
    model = _mlmodel(json.dumps({"flavors": {"sklearn": {}}, "signature": spec}))
    assert model["tables"] == {"inputs": [{"name": "x", "type": "long", "shape": "", "required": "yes"}]}
    assert model["flavors"] == ["sklearn"] and model["has_signature"]
    assert _mlmodel("flavors: {}\n")["has_signature"] is False
    assert _mlmodel("- just\n- a list\n")["error"]
    assert _mlmodel("signature: {inputs: 'not json'}\n")["error"]
    assert _mlmodel("key: [unclosed\n")["error"]
    assert _mlmodel("flavors: {1: a, b: c}\n")["flavors"] == ["1", "b"]
    assert _mlmodel("[" * 5000 + "]" * 5000)["error"]


def test_hostile_json_and_csv_files_preview_as_text(tmp_path):
    """Deep nesting and a huge field answer a preview, not a 500."""
    from tests.api.conftest import in_process

    with in_process(tmp_path / "data") as client:
        for name, data in (
            ("deep.json", b"[" * 100_000 + b"]" * 100_000),
            ("wide.csv", b"a\n" + b"x" * 200_000),
        ):
            put = client.put(f"/api/2.0/mlflow-artifacts/artifacts/0/{name}", content=data)
            assert put.status_code == 200, put.text
            shown = client.get(f"/previews/artifacts/0/{name}")
            assert shown.status_code == 200, shown.text
            assert "shown as text" in shown.text
