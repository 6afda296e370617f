"""record() writes values under rec_lib's MIME type; read_notebook() finds them again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rec_lib.reports.nbtools import RECORD_MIME_TYPE, read_notebook, record


def test_record_emits_json_under_the_mime_type(monkeypatch: pytest.MonkeyPatch) -> None:
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw: shown.append(obj))
    record("hr", np.float32(0.25))
    assert shown == [{RECORD_MIME_TYPE: {"hr": 0.25}, "text/plain": "recorded hr"}]
    with pytest.raises(TypeError):
        record("bad", object())


def test_read_notebook_collects_records_later_ones_win(tmp_path: Path) -> None:
    def output(payload):
        return {"output_type": "display_data", "data": {RECORD_MIME_TYPE: payload, "text/plain": "x"}, "metadata": {}}

    notebook = {
        "cells": [
            {"cell_type": "markdown", "source": "x"},
            {"cell_type": "code", "outputs": [output({"a": 1, "b": [1, 2]})]},
            {"cell_type": "code", "outputs": [{"output_type": "stream", "text": "hi"}, output({"a": 2})]},
        ]
    }
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps(notebook))
    assert read_notebook(path) == {"a": 2, "b": [1, 2]}
