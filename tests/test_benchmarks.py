"""Benchmarks that the suite runs in their fast form: they must run end to end and write their results."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_alss_ablation_runs_end_to_end(tmp_path):
    environment = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, str(ROOT / "bench" / "alss_ablation.py"), "--fast", "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    table = (tmp_path / "table.md").read_text().splitlines()
    models = ["untrained", "alss", "palindrome", "plain"]
    references = ["data: alss clips", "data: palindrome clips", "data: plain clips"]
    assert [row.split("|")[1].strip() for row in table[2:]] == models + references
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["results"]["alss"]) == {"seam", "loop_c", "motion", "mse_f0", "mirror"}
    assert (tmp_path / "sheet-alss.png").is_file() and (tmp_path / "vae-reconstructions.png").is_file()
