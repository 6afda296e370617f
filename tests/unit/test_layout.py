"""The package's shape: serving (the stores, recommend(), the API, the picker) runs without the training side."""

from __future__ import annotations

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


def test_every_stage_has_its_own_sub_package_and_no_stage_imports_a_later_one() -> None:
    """data ← pinsage ← serving ← reports; pinsage may read the embeddings file format from serving."""
    order = ["data", "pinsage", "serving", "reports"]
    allowed = {("pinsage", "serving.embeddings")}
    for stage in order:
        for module in (PROJECT_ROOT / "rec_lib" / stage).glob("*.py"):
            text = module.read_text()
            for later in order[order.index(stage) + 1 :]:
                for line in text.splitlines():
                    stripped = line.strip()
                    if stripped.startswith(("from rec_lib." + later, "import rec_lib." + later)):
                        target = stripped.split()[1].removeprefix("rec_lib.")
                        lazy = line.startswith(" ")
                        assert (stage, target) in allowed or lazy, f"{module.name} imports {target}"
