"""bench/motion_quality.py in its fast form: it runs end to end and writes its table, results and sheets."""

import json

from tests.test_benchmarks import run_bench


def test_motion_quality_scores_every_photo_and_writes_its_sheets(tmp_path):
    run_bench("motion_quality.py", "--out", str(tmp_path))
    rows = json.loads((tmp_path / "results.json").read_text())
    assert [row["photo"] for row in rows] == ["astronaut", "coffee", "rocket", "clock"]
    assert all(row["beyond_reach"] == 0.0 for row in rows)  # a layer covers only what it sweeps
    assert rows[-1]["plan"].startswith("still") and rows[-1]["motion"] < 0.05  # "does not move"
    assert all((tmp_path / f"sheet-{row['photo']}.png").is_file() for row in rows)
