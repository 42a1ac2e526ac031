"""``medft status`` reads a results folder as a grid leaves it: done, failed, running, stalled
and not-started cells, and the hours (medft.status)."""

import json
import os
import time

import pandas as pd

from medft.cli import main
from medft.status import cell_states
from medft.workflow import Grid, load_config


def _grid(tmp_path):
    extra = tmp_path / "where.yaml"
    extra.write_text(f"results: {tmp_path / 'results'}\nname: demo\n")
    return Grid(load_config(["config/demo.yaml", str(extra)])), extra


def _epochs(run, n, seconds=2.0):
    run.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"epoch": range(n), "seconds": seconds}).to_csv(run / "epochs.csv", index=False)


def test_each_cell_state_is_read_from_its_files(tmp_path, capsys):
    grid, extra = _grid(tmp_path)
    cells = grid.cells()
    done, failed, running, stalled = (grid.run_dir(*c) for c in cells[:4])
    for run in (done, failed, running, stalled):
        _epochs(tmp_path / run, 2)
    (tmp_path / done / "metrics.json").write_text(json.dumps({"best_epoch": 1}))
    d, m, s, lr, seed = cells[1]
    log = tmp_path / "results" / "logs" / "train" / d / m / f"{s}_lr{lr}_seed{seed}.log"
    log.parent.mkdir(parents=True)
    log.write_text("epoch 1\nRuntimeError: CUDA out of memory. Tried to allocate 2 GiB\n")
    old = time.time() - 3 * 3600
    os.utime(tmp_path / stalled / "epochs.csv", (old, old))
    states = cell_states(grid)
    assert states["state"].iloc[:4].tolist() == ["done", "failed", "running", "stalled"]
    assert (states["state"].iloc[4:] == "not started").all()
    assert states["message"].iloc[1] == "RuntimeError: CUDA out of memory. Tried to allocate 2 GiB"
    assert states["epoch"].iloc[2] == 2 and states["seconds"].iloc[0] == 4.0

    assert main(["status", "--configfile", "config/demo.yaml", str(extra)]) == 0
    out = capsys.readouterr().out
    assert f"1 of {len(cells)} cells done" in out
    assert "under a minute spent" in out  # 4 s of epochs, not "0.0 h"
    assert "CUDA out of memory" in out and "stalled:" in out


def test_durations_read_in_the_unit_that_shows_them():
    from medft.status import readable_duration

    assert readable_duration(20) == "under a minute"
    assert readable_duration(6 * 60 + 10) == "6 min"
    assert readable_duration(5 * 3600 + 30 * 60) == "5.5 h"
