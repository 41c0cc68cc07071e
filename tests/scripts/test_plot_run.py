#!/usr/bin/python3
"""ctest for launch/plot_run.py: a small synthetic run directory in kwm's formats gives the PNG
files, several runs overlay, and a missing directory is a clear error with exit status 2.

  /usr/bin/python3 tests/scripts/test_plot_run.py launch/plot_run.py
"""

import contextlib
import importlib.util
import io
import json
import math
import os
import sys
import tempfile

SKIP = 77


def write_run(path, learner, epochs=1, steps=40):
    os.makedirs(path)
    with open(os.path.join(path, "metrics.jsonl"), "w", encoding="utf-8") as f:
        f.write(json.dumps({"event": "start", "learner": learner, "parameters": 3}) + "\n")
        for epoch in range(1, epochs + 1):
            for step in range(10, steps + 1, 10):  # kwm restarts step at each epoch
                window = {"count": 10, "mse": 100.0 / (step * epoch), "mae": 1.0,
                          "nll": 3.0 - 0.01 * step, "coverage90": 0.9}
                f.write(json.dumps({"split": "train", "epoch": epoch, "step": step,
                                    "window": window}) + "\n")
        f.write(json.dumps({"split": "validation", "metrics": {"overall": window}}) + "\n")
    with open(os.path.join(path, "predictions.csv"), "w", encoding="utf-8") as f:
        f.write("t,split,y_a,mean_a,var_a,y_b,mean_b,var_b\n")
        for t in range(60):
            split = "train" if t < steps else ("validation" if t < 50 else "test")
            y = "NaN" if t == 45 else f"{math.sin(t / 5):.6f}"  # a missing observation
            f.write(f"{t},{split},{y},{math.sin((t - 1) / 5):.6f},0.01,{t},{t + 0.5},1\n")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: test_plot_run.py PATH/TO/plot_run.py")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib missing: skipped")
        return SKIP
    spec = importlib.util.spec_from_file_location("plot_run", sys.argv[1])
    plot_run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plot_run)

    with tempfile.TemporaryDirectory() as tmp:
        first, second = os.path.join(tmp, "kwm"), os.path.join(tmp, "bptt")
        write_run(first, "sensitivity-dekf")
        write_run(second, "bptt-adam", epochs=3)
        learner, points = plot_run.read_metrics(second)
        assert learner == "bptt-adam", learner
        steps = [p[0] for p in points]
        assert steps == sorted(steps) and steps[-1] == 120, steps  # epochs laid end to end

        out = os.path.join(tmp, "plots")
        with contextlib.redirect_stdout(io.StringIO()):
            assert plot_run.main([first, second, "--out", out]) == 0
        expected = ["learning_curves.png", "predictions_kwm.png", "predictions_bptt.png",
                    "predictions_compare.png"]
        for name in expected:
            path = os.path.join(out, name)
            assert os.path.getsize(path) > 1000, f"{path} missing or empty"
            with open(path, "rb") as f:
                assert f.read(8) == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"

        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            status = plot_run.main([os.path.join(tmp, "absent"), "--out", out])
        assert status == 2 and "no such directory" in stderr.getvalue(), stderr.getvalue()

        os.makedirs(os.path.join(tmp, "empty"))
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            status = plot_run.main([os.path.join(tmp, "empty"), "--out", out])
        assert status == 2 and "metrics.jsonl: no such file" in stderr.getvalue()
    print("plot_run: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
