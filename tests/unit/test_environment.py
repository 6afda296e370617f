"""pyproject.toml and environment.yml declare the same default stack."""

from __future__ import annotations

import re
import tomllib

from rec_lib.config import PROJECT_ROOT


def test_environment_yml_mirrors_pyproject() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    declared = set(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared |= set(extra)
    text = (PROJECT_ROOT / "environment.yml").read_text()
    pip_section = text.split("- pip:", 1)[1]
    mirrored = set(re.findall(r"^\s+- (\S+)$", pip_section, flags=re.MULTILINE))
    assert mirrored == declared
    assert "python=3.11" in text


def test_dgl_stack_pins_the_last_dgl_release() -> None:
    pins = (PROJECT_ROOT / "requirements" / "dgl.txt").read_text()
    for pin in ("dgl==2.1.0", "torch==2.2.1", "torchdata==0.7.1", "numpy==1.26.4"):
        assert re.search(rf"^{re.escape(pin)}$", pins, flags=re.MULTILINE), pin
