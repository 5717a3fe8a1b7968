"""experiments/pia_loops.py in its fast form: it trains a PIA-layout model, loops it both ways and writes its table."""

import json

from tests.test_benchmarks import run_bench


def test_pia_loops_bench_compares_pias_loop_preset_with_cycle_on_one_model(tmp_path):
    run_bench("pia_loops.py", "--out", str(tmp_path))
    summary = json.loads((tmp_path / "results.json").read_text())
    loops = {row["mode"]: row for row in summary["loops"]}
    assert set(loops) == {"PIA loop preset (none)", "cycle (ours)"}
    assert abs(loops["cycle (ours)"]["loop_c"] - 1) < 1e-6  # its last frame repeats the first: the player skips it
    assert loops["PIA loop preset (none)"]["loop_c"] == loops["PIA loop preset (none)"]["loop_c_shown"]
    assert (tmp_path / "pia-model" / "unet" / "config.json").is_file()
    assert "| cycle (ours), motion_scale 3 | 1 |" in (tmp_path / "table.md").read_text()
