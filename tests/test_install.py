"""A plain `pip install loopanimate` makes a loop, and `pip install 'loopanimate[app]'` serves the web app.

The dev venv has every extra, so it hides an import that only an extra brings (scikit-image once was one). Two checks:
every third-party module the package imports comes from a base dependency (gradio only under `app/`), read from the
source, fast; and the real thing: the wheel built and installed with `-c constraints.txt` into a fresh venv, without
extras, animates the bundled photo, then with `[app]` starts `serve`.
"""

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from loopanimate.export import read_video
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "loopanimate"
EXTRA_ONLY = {"app": "gradio"}  # the folder under the package -> the distribution only its extra brings
OPT_IN = {"bitsandbytes"}  # imported only for the setting that asks for it (use_8bit_adam); one line if missing


def requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!\[; ]", requirement, maxsplit=1)[0].lower() for requirement in requirements}


def imported_distributions(path: Path) -> set[str]:
    """The distributions that provide the third-party modules `path` imports (at any depth in the file)."""
    provides = importlib.metadata.packages_distributions()
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    names -= set(sys.stdlib_module_names) | {"loopanimate"}
    return {distribution.lower() for name in names for distribution in provides.get(name, [name])}


def test_every_import_comes_from_a_base_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = requirement_names(project["dependencies"])
    for path in sorted(PACKAGE.rglob("*.py")):
        folder = path.relative_to(PACKAGE).parts[0]
        allowed = base | OPT_IN | ({EXTRA_ONLY[folder]} if folder in EXTRA_ONLY else set())
        missing = imported_distributions(path) - allowed
        assert not missing, f"{path.relative_to(ROOT)} imports {sorted(missing)}, not a base dependency"


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{command[:3]}: {result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def plain_venv(tmp_path_factory) -> Path:
    """A fresh venv holding the wheel and its base dependencies only (pinned by constraints.txt)."""
    folder = tmp_path_factory.mktemp("install")
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(folder / "dist"), str(ROOT)])
    venv = folder / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    wheel = next((folder / "dist").glob("loopanimate-*.whl"))
    # --no-compile: byte-compiling all of torch took half a minute, more than the few processes here compile
    run([venv / "bin" / "pip", "install", "--quiet", "--no-compile", "-c", ROOT / "constraints.txt", wheel])
    return venv


def test_a_wheel_without_extras_animates_the_bundled_photo(plain_venv, tmp_path):
    distributions = run([plain_venv / "bin" / "pip", "list", "--format=freeze"]).stdout.lower()
    assert "gradio==" not in distributions and "pytest==" not in distributions  # no extra came along
    environment = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [plain_venv / "bin" / "loopanimate", "animate", ROOT / "examples" / "coffee.png"]
    run([*command, "--prompt", "the cup sways", "-o", "loop.mp4"], cwd=tmp_path, env=environment)
    frames, _ = read_video(tmp_path / "loop.mp4")
    assert frames.shape[0] == 34 and frames.std(axis=0).max() > 0  # the whole loop, and it moves


def test_serve_starts_with_the_app_extra_alone(plain_venv, tmp_path):
    wheel = next(plain_venv.parent.glob("dist/loopanimate-*.whl"))
    run(
        [
            plain_venv / "bin" / "pip",
            "install",
            "--quiet",
            "--no-compile",
            "-c",
            ROOT / "constraints.txt",
            f"{wheel}[app]",
        ]
    )
    port = free_port()
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    command = [plain_venv / "bin" / "loopanimate", "serve", "--port", str(port)]
    server = subprocess.Popen(command, cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as page:
                    assert page.status == 200
                    break
            except OSError:
                assert server.poll() is None, server.stdout.read().decode()[-3000:]
                time.sleep(0.5)
        else:
            pytest.fail("the server did not answer within 90 s")
    finally:
        server.terminate()
        server.wait(timeout=30)
