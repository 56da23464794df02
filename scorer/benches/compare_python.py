#!/usr/bin/env python3
"""ROC AUC and C-index: medarena-scorer against scikit-learn and lifelines, same rows, same
run. Writes the data to DIR, runs the release-built Rust timer on it, times the Python
libraries, checks the values agree, and prints a Markdown table.

    python3 -m venv /tmp/scorer-venv
    /tmp/scorer-venv/bin/pip install scikit-learn lifelines
    cargo build --release -p medarena-scorer --example bench_metrics
    /tmp/scorer-venv/bin/python scorer/benches/compare_python.py [--rows 10000000]

lifelines' concordance_index is timed on the small set only (100k rows by default): on
10M rows it takes far too long for a benchmark run.
"""

import argparse
import json
import os
import pathlib
import subprocess
import time

import numpy as np
import sklearn
import lifelines
from lifelines.utils import concordance_index
from sklearn.metrics import roc_auc_score

ROOT = pathlib.Path(__file__).resolve().parents[2]


def write(directory, prefix, n, rng):
    labels = rng.random(n) < 0.3
    # Rounded scores: realistic ties (many models output a few decimals).
    scores = np.round(rng.normal(size=n) + 0.8 * labels, 4)
    risk = rng.normal(size=n)
    time_ = np.round(rng.exponential(np.exp(-risk)), 3) + 0.001
    censor = rng.exponential(1.5, size=n)
    event = time_ <= censor
    observed = np.minimum(time_, np.round(censor, 3) + 0.001)
    prediction = np.round(-risk + rng.normal(0, 0.5, size=n), 4)
    data = {
        "labels.u8": labels.astype(np.uint8),
        "scores.f64": scores.astype("<f8"),
        "time.f64": observed.astype("<f8"),
        "event.u8": event.astype(np.uint8),
        "prediction.f64": prediction.astype("<f8"),
    }
    for name, array in data.items():
        array.tofile(directory / f"{prefix}{name}")
    return labels, scores, observed, event, prediction


def best_of(repeats, f):
    seconds = []
    value = None
    for _ in range(repeats):
        start = time.perf_counter()
        value = f()
        seconds.append(time.perf_counter() - start)
    seconds.sort()
    return float(value), seconds[0], seconds[len(seconds) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--small-rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", default="/tmp/scorer-bench")
    args = parser.parse_args()
    load_before = os.getloadavg()
    directory = pathlib.Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    big = write(directory, "", args.rows, rng)
    small = write(directory, "small_", args.small_rows, rng)

    binary = ROOT / "target" / "release" / "examples" / "bench_metrics"

    def run_ours(threads):
        env = dict(os.environ)
        if threads:
            env["RAYON_NUM_THREADS"] = str(threads)
        out = subprocess.run(
            [str(binary), str(directory), str(args.repeats)],
            check=True, capture_output=True, text=True, env=env,
        ).stdout
        return {(r["metric"], r["rows"]): r for r in map(json.loads, out.splitlines())}

    ours = run_ours(None)
    ours_one_thread = run_ours(1)

    theirs = {}
    for rows, (labels, scores, observed, event, prediction) in [(args.rows, big), (args.small_rows, small)]:
        theirs[("roc_auc", rows)] = ("scikit-learn roc_auc_score",) + best_of(
            args.repeats, lambda: roc_auc_score(labels, scores)
        )
    labels, scores, observed, event, prediction = small
    theirs[("c_index", args.small_rows)] = ("lifelines concordance_index",) + best_of(
        min(args.repeats, 3), lambda: concordance_index(observed, prediction, event)
    )

    print(f"scikit-learn {sklearn.__version__}, lifelines {lifelines.__version__}, numpy {np.__version__}")
    print(f"cores: {os.cpu_count()}, load average (1/5/15 min) before: {load_before}, after: {os.getloadavg()}")
    print()
    print(
        "| metric | rows | medarena, all cores: best (median) s | medarena, 1 thread | reference "
        "| reference best (median) s | speed-up all cores / 1 thread | abs. difference |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for key in sorted(ours):
        r, one = ours[key], ours_one_thread[key]
        assert r["value"] == one["value"], (key, r, one)
        cells = f"| {key[0]} | {key[1]:,} | {r['best_s']:.3f} ({r['median_s']:.3f}) | {one['best_s']:.3f} ({one['median_s']:.3f}) |"
        if key in theirs:
            name, value, best, median = theirs[key]
            diff = abs(value - r["value"])
            print(
                f"{cells} {name} | {best:.3f} ({median:.3f}) | "
                f"{best / r['best_s']:.1f}x / {best / one['best_s']:.1f}x | {diff:.1e} |"
            )
            assert diff < 1e-9, (key, value, r["value"])
        else:
            print(f"{cells} — | — | — | — |")


if __name__ == "__main__":
    main()
