"""bench: a tiny benchmark run through the real application pipeline produces JSON rows and Markdown."""

from __future__ import annotations

import json

from bench.__main__ import main
from bench.noop import NoopMethod
from bench.report import ROW_KEYS, speed_table
from bench.speed import BenchConfig, run_benchmark


def test_tiny_benchmark_rows_have_the_required_keys():
    cfg = BenchConfig(methods=["average", "max"], resolutions=[(160, 120)], frames=3, warmup=1, repeats=2,
                      memory=True)
    rows = run_benchmark(cfg)
    assert [r["method"] for r in rows] == ["noop", "average", "max"]
    for r in rows:
        assert set(ROW_KEYS) <= set(r)
        assert r["resolution"] == "160x120" and "CPU" in r["device"]
        assert r["fps"] > 0 and r["ms_fuse"] >= 0 and r["repeats"] == 2 and r["frames"] == 6
        assert r["backend"] == "cpu (numpy/opencv)"
        assert r["peak_tracemalloc_mb"] > 0
    assert rows[0]["fps_vs_noop"] == 1.0
    table = speed_table(rows)
    assert table.count("\n") == 2 + len(rows) and "| 160x120 | average |" in table


def test_cli_writes_json_markdown_and_chart(tmp_path):
    out_json, out_md, chart = tmp_path / "b.json", tmp_path / "b.md", tmp_path / "bench_fps.png"
    rc = main(["--methods", "average", "--resolutions", "96x64", "--frames", "2", "--warmup", "1",
               "--repeats", "1", "--no-memory", "--json", str(out_json), "--markdown", str(out_md),
               "--chart", str(chart)])
    assert rc == 0
    rows = json.loads(out_json.read_text())
    assert {r["method"] for r in rows} == {"noop", "average"}
    assert all(set(ROW_KEYS) <= set(r) for r in rows)
    md = out_md.read_text()
    assert "| 96x64 | average |" in md and "No GPU was lent" in md and "python -m bench" in md
    assert chart.stat().st_size > 1000


def test_unknown_method_is_reported_not_fatal(tmp_path, capsys):
    rc = main(["--methods", "no_such_method", "--resolutions", "96x64", "--frames", "1", "--repeats", "1",
               "--no-memory", "--json", str(tmp_path / "b.json")])
    assert rc == 1
    rows = json.loads((tmp_path / "b.json").read_text())
    failed = [r for r in rows if r["method"] == "no_such_method"][0]
    assert failed["fps"] is None and "no_such_method" in failed["error"]


def test_noop_returns_the_visible_frame():
    import numpy as np

    vi = np.random.default_rng(0).random((4, 5), dtype=np.float32)
    assert NoopMethod().fuse(np.zeros_like(vi), vi) is vi


def test_realtime_summary_judges_each_resolution_against_the_goal():
    from bench.report import realtime_summary

    rows = [{"resolution": "640x480", "method": "m2pn", "fps": 2.0, "ms_fuse": 480.0},
            {"resolution": "640x480", "method": "m2pn_rt", "fps": 30.0, "ms_fuse": 20.0},
            {"resolution": "1280x720", "method": "m2pn_rt", "fps": 12.5, "ms_fuse": 70.0},
            {"resolution": "320x240", "method": "m2pn_rt", "fps": None, "ms_fuse": None}]
    text = realtime_summary(rows)
    lines = text.strip().splitlines()
    assert len(lines) == 2
    assert "640x480" in lines[0] and "meets the 25 FPS goal" in lines[0] and "15x the full-resolution" in lines[0]
    assert "1280x720" in lines[1] and "misses the 25 FPS goal" in lines[1]


def test_report_rerenders_the_page_from_saved_rows(tmp_path):
    from bench.report import main as report_main

    rows = [{"device": "test cpu", "resolution": "320x240", "method": "m2pn_rt", "backend": "cpu", "fps": 40.0,
             "ms_fuse": 10.0}]
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    out = tmp_path / "bench.md"
    assert report_main(["--json", str(tmp_path / "rows.json"), "--markdown", str(out),
                        "--chart", str(tmp_path / "fps.png")]) == 0
    page = out.read_text()
    assert "| 320x240 | m2pn_rt | cpu | 40.0 |" in page and "meets the 25 FPS goal" in page
    assert (tmp_path / "fps.png").stat().st_size > 0


def test_video_mode_rows_run_the_pipeline_with_the_video_mode(tmp_path):
    rc = main(["--methods", "average+video", "average", "--resolutions", "96x64", "--frames", "2", "--repeats", "1",
               "--no-memory", "--json", str(tmp_path / "b.json")])
    assert rc == 0
    rows = {r["method"]: r for r in json.loads((tmp_path / "b.json").read_text())}
    assert rows["average+video"]["ms_video"] > 0 and rows["average"]["ms_video"] == 0


def test_video_page_is_written_from_the_saved_figures(tmp_path):
    from bench.video_page import main as video_page

    halo = {"rows": [{"method": m, "scene": "s", "group": "MSRS night", "halo": h, "halo_dark": h / 2, "halo_bright": h / 2,
                      "near_fraction": 0.1, "black_lift": 40.0, "dark_fraction": 0.5, "mean_fused": 70.0, "mean_ir": 15.0,
                      "mean_vi": 25.0} for m, h in (("m2pn", 1.6), ("m2pn_rt", 0.4))]}
    from bench.halo import summary

    halo["summary"] = summary(halo["rows"])
    base = {"frames": 20, "ir": 10.0, "vi": 4.0, "ratio_mean": 0.5, "motion_pixels": 0.1, "corr_now": 0.99, "corr_prev": 0.8}
    flick = [{"sequence": "clip 0114_1611", "method": "sources", "mode": "-", "frames": 20, "ir_change": 10.0, "vi_change": 4.0},
             {"sequence": "clip 0114_1611", "method": "m2pn_rt", "mode": "off", **base, "fused": 5.0, "ratio_max": 0.5, "lag": 0.0},
             {"sequence": "clip 0114_1611", "method": "m2pn_rt", "mode": "on", **base, "fused": 2.5, "ratio_max": 0.25, "lag": 0.05}]
    (tmp_path / "h.json").write_text(json.dumps(halo))
    (tmp_path / "f.json").write_text(json.dumps(flick))
    out = tmp_path / "v.md"
    assert video_page(["--halo", str(tmp_path / "h.json"), "--flicker", str(tmp_path / "f.json"), "--out", str(out)]) == 0
    text = out.read_text()
    assert "MSRS night 0.40 against 1.60" in text and "no worse on every group" in text
    assert "falls from 5.00 to 2.50 grey levels" in text and "0.25-0.25 of the larger source change" in text
