"""Record values from inside a notebook and read them back from the executed file.

A notebook calls :func:`record` in its last cell; the value travels as a display output with
rec_lib's own MIME type, so it survives papermill and can be read by tests and reports with
:func:`read_notebook` (scrapbook did this once; it is unmaintained).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

RECORD_MIME_TYPE = "application/x.rec-lib.record+json"


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and arrays, tuples and paths turned into plain JSON types.

    >>> jsonable({"a": np.int64(3), "b": (np.float32(0.5), Path("x"))})
    {'a': 3, 'b': [0.5, 'x']}
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def record(name: str, value: Any) -> None:
    """Attach ``value`` under ``name`` to the current cell's outputs."""
    from IPython.display import display

    payload = {name: jsonable(value)}
    json.dumps(payload)
    display({RECORD_MIME_TYPE: payload, "text/plain": f"recorded {name}"}, raw=True)


def read_notebook(path: str | Path) -> dict[str, Any]:
    """Every value recorded in the executed notebook at ``path``; a later record wins."""
    notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    found: dict[str, Any] = {}
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            payload = output.get("data", {}).get(RECORD_MIME_TYPE)
            if payload:
                found.update(payload)
    return found
