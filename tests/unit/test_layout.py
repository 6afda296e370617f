"""The package's shape: stages that import only earlier ones, and serving (the stores, recommend(), the API, the
picker) that runs without the training side."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

from rec_lib.config import PROJECT_ROOT

TRAINING_ONLY = ("torch", "scipy", "matplotlib", "dgl")

WITHOUT_TRAINING = f"""
import sys
for name in {TRAINING_ONLY!r}:
    sys.modules[name] = None  # any import of them now raises ImportError
import rec_lib.serving, rec_lib.serving.api, rec_lib.reports.picker, rec_lib.serving.recommend
from fastapi.testclient import TestClient
from rec_lib.cli import _parser
from rec_lib.serving.api import create_app
from rec_lib.serving.stores import StoreSettings
_parser().parse_args(["serve", "--port", "8123"])
settings = StoreSettings.from_env(sys.argv[1])
with TestClient(create_app(settings)) as client:
    answer = client.get("/health")
print(answer.status_code, answer.headers["content-type"], ",".join(sorted(answer.json()["failing"])))
"""


def test_serving_and_the_serve_command_load_no_training_code(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_TRAINING, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    status, content_type, failing = done.stdout.split()[-3:]
    assert (status, content_type) == ("503", "application/json"), "an empty artefacts dir holds no loaded store"
    assert failing == "milvus,sql", "both stores were asked, without torch"


def test_importing_serving_loads_no_torch() -> None:
    code = "import sys, rec_lib.serving.api, rec_lib.cli; rec_lib.cli._parser(); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"


def test_the_serve_extra_and_the_base_install_need_no_training_package() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    serving = project["dependencies"] + project["optional-dependencies"]["serve"]
    names = {requirement.split("==")[0].split("[")[0].lower() for requirement in serving}
    assert not names & set(TRAINING_ONLY)
    assert "torch" in {r.split("==")[0] for r in project["optional-dependencies"]["pinsage"]}


FOUNDATION = {"config", "errors", "progress", "files", "contracts", "__version__"}
"""Modules every stage may use: paths and settings, error types, progress bars, atomic writes, the contracts."""
STAGES = {
    "data": set(),
    "evaluation": {"data"},
    "pinsage": {"data", "evaluation"},
    "experiments": {"data", "evaluation", "pinsage"},
    "serving": {"data"},
    "reports": {"data", "serving"},
}
"""Each stage and the stages it may import; serving reads the vectors through the contracts, never the model."""
ON_TOP = {"steps": set(STAGES), "cli": {*STAGES, "steps"}, "__main__": {"cli"}}


def imported_parts(path: Path) -> set[str]:
    """The rec_lib packages and modules ``path`` imports anywhere: at the top, inside functions or under
    TYPE_CHECKING."""
    parts = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "rec_lib":
            names = node.module.split(".")
            parts |= {names[1]} if len(names) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            parts |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("rec_lib.")}
    return parts


def test_every_module_imports_only_its_own_stage_earlier_stages_and_the_foundation() -> None:
    """README's layout, checked: no exemption, and an import inside a function counts as much as one at the top."""
    package = PROJECT_ROOT / "rec_lib"
    top_level = {path.stem for path in package.glob("*.py")} - {"__init__"}
    assert top_level == FOUNDATION - {"__version__"} | set(ON_TOP), "a new top-level module needs a place here"
    assert {path.name for path in package.iterdir() if (path / "__init__.py").is_file()} == set(STAGES)
    for path in sorted(package.rglob("*.py")):
        place = path.relative_to(package).parts[0].removesuffix(".py")
        allowed = FOUNDATION | STAGES.get(place, set()) | ON_TOP.get(place, set()) | {place}
        if place in FOUNDATION:
            allowed = FOUNDATION
        wrong = imported_parts(path) - allowed
        assert not wrong, f"{path.relative_to(PROJECT_ROOT)} imports {sorted(wrong)}"


def test_the_layout_check_catches_an_import_hidden_in_a_function(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from rec_lib.pinsage.model import PinSageModel\n")
    assert imported_parts(module) == {"pinsage"}
