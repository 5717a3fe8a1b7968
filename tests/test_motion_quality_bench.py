"""bench/motion_quality.py in its fast form: it runs end to end and writes its table, results and sheets."""

import importlib.util
import json

from tests.test_benchmarks import ROOT, run_bench


def bench_module():
    spec = importlib.util.spec_from_file_location("motion_quality", ROOT / "bench" / "motion_quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_motion_quality_scores_every_photo_and_writes_its_sheets(tmp_path):
    run_bench("motion_quality.py", "--out", str(tmp_path))
    rows = json.loads((tmp_path / "results.json").read_text())
    assert [row["photo"] for row in rows] == ["astronaut", "coffee", "rocket", "clock"]
    assert all(row["beyond_reach"] == 0.0 for row in rows)  # a layer covers only what it sweeps
    assert rows[-1]["plan"].startswith("still") and rows[-1]["motion"] < 0.05  # "does not move"
    assert all((tmp_path / f"sheet-{row['photo']}.png").is_file() for row in rows)
    assert all(0.0 <= row["iou"] <= 1.0 for row in rows)  # each of the four has a reference mask


def test_every_reference_mask_is_a_region_of_its_photo():
    bench = bench_module()
    for name in bench.PHOTOS:
        shape = bench.photo(name, 128).shape[:2]
        reference = bench.reference_mask(name, shape)
        assert reference is None or 0.01 < reference.mean() < 0.9, name
        assert reference is not None or name in ("hubble_deep_field", "immunohistochemistry"), name
