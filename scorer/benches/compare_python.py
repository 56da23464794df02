#!/usr/bin/env python3
"""medarena-scorer's metrics against the Python references, same rows, same run. Writes
the data to DIR, runs the release-built Rust timer on it (all cores, then one thread),
times the Python libraries, checks the values agree to 1e-9, and prints Markdown tables.

    python3 -m venv /tmp/bench-venv
    /tmp/bench-venv/bin/pip install scikit-survival lifelines statsmodels
    cargo build --release -p medarena-scorer --example bench_metrics
    /tmp/bench-venv/bin/python scorer/benches/compare_python.py [--suites auc,survival,calibration]

Suites:
- `auc`: ROC AUC (scikit-learn) and Harrell's C (lifelines) on `--rows` and `--small-rows`
  rows, Rust functions called directly. lifelines' concordance_index is timed on the small
  set only: on 10M rows it takes far too long for a benchmark run.
- `survival` (at each of `--sizes`): every survival metric through `Metric::score_with`
  against scikit-survival (`concordance_index_censored`, `concordance_index_ipcw`,
  `cumulative_dynamic_auc`, `brier_score`, `integrated_brier_score`), lifelines'
  `concordance_index`, and for the ECE at a horizon the numpy/lifelines definition in
  `fixtures/generate.py`. The censoring distribution is fitted to separate training labels.
- `calibration` (at each of `--sizes`): calibration slope and intercept against statsmodels'
  GLM Binomial (as `fixtures/generate.py` fits them), ECE against its numpy definition there.

A reference is skipped at a size where its time, extrapolated from the size before
(quadratically for scikit-survival's C-indices, which compare every event with every later
row), would exceed `--budget` seconds; the table says so. Python repetitions stop early once
a reference has used `--budget` seconds at one size.
"""

import argparse
import json
import os
import pathlib
import subprocess
import time

import sys

import numpy as np
import sklearn
import lifelines
from lifelines.utils import concordance_index
from sklearn.metrics import roc_auc_score

ROOT = pathlib.Path(__file__).resolve().parents[2]
SURVIVAL_METRICS = [
    "c_index", "uno_c_index", "td_auc", "brier_at_horizon", "integrated_brier", "ece_at_horizon",
]
CALIBRATION_METRICS = ["calibration_slope", "calibration_intercept", "ece"]


def write(directory, prefix, n, rng):
    labels = rng.random(n) < 0.3
    # Rounded scores: realistic ties (many models output a few decimals).
    scores = np.round(rng.normal(size=n) + 0.8 * labels, 4)
    risk = rng.normal(size=n)
    time_ = np.round(rng.exponential(np.exp(-risk)), 3) + 0.001
    censor = rng.exponential(1.5, size=n)
    event = time_ <= censor
    observed = np.minimum(time_, np.round(censor, 3) + 0.001)
    # A risk score (higher = earlier event), the scorer's convention; lifelines gets its
    # negation.
    prediction = np.round(risk + rng.normal(0, 0.5, size=n), 4)
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


def timed(repeats, budget, f):
    """Like `best_of`, but stops repeating once `budget` seconds are spent. Returns (value,
    best, median, runs)."""
    seconds = []
    value = None
    while len(seconds) < repeats and sum(seconds) < budget:
        start = time.perf_counter()
        value = f()
        seconds.append(time.perf_counter() - start)
    runs = len(seconds)
    seconds.sort()
    return float(value), seconds[0], seconds[runs // 2], runs


def write_survival(directory, n, gen):
    """Exponential event times with hazard exp(x) (proportional hazards), exponential
    censoring with mean 2 and administrative censoring at 2.5: about 38 % censored.
    Training labels are a second draw of the same size (the censoring distribution of the
    IPCW metrics). Times are floored to 1/1000 (ties; an event can never land on the
    administrative censoring time 2.5, where the training censoring survival is 0). Risk
    scores are a noisy linear predictor rounded to 4 decimals (ties, and no two distinct
    risks closer than scikit-survival's tied_tol); curves S(t | x) = exp(-t exp(lp)) on a
    10-point grid from the 5 % to the 90 % quantile of the test times."""

    def draw():
        x = gen.normal(size=n)
        t = gen.exponential(np.exp(-x))
        c = np.minimum(gen.exponential(2.0, size=n), 2.5)
        return x, np.floor(np.minimum(t, c) * 1000.0) / 1000.0, t <= c

    _, train_time, train_event = draw()
    x, time_, event = draw()
    lp = 0.8 * x + gen.normal(0.0, 0.4, size=n)
    risk = np.round(lp, 4)
    grid = np.linspace(np.quantile(time_, 0.05), np.quantile(time_, 0.9), 10)
    curves = np.exp(-np.outer(np.exp(lp), grid))
    data = {
        "time.f64": time_,
        "event.u8": event,
        "risk.f64": risk,
        "train_time.f64": train_time,
        "train_event.u8": train_event,
        "grid.f64": grid,
        "curves.f64": curves,
        "horizons.f64": np.quantile(time_, [0.25, 0.5, 0.75]),
        "tau.f64": np.quantile(time_, [0.8]),
        "brier_horizon.f64": grid[4:5],
    }
    sub = directory / f"survival-{n}"
    sub.mkdir(exist_ok=True)
    for name, array in data.items():
        array = array.astype(np.uint8) if name.endswith(".u8") else array.astype("<f8")
        array.tofile(sub / name)
    return data


def write_calibration(directory, n, gen):
    """Outcomes from logits z ~ N(0, 1.5²); predictions sigmoid(1.3 z - 0.2), too extreme
    and a little low, so that slope and intercept are away from 1 and 0."""
    z = gen.normal(0.0, 1.5, size=n)
    labels = gen.random(n) < 1.0 / (1.0 + np.exp(-z))
    probabilities = 1.0 / (1.0 + np.exp(-(1.3 * z - 0.2)))
    sub = directory / f"calibration-{n}"
    sub.mkdir(exist_ok=True)
    labels.astype(np.uint8).tofile(sub / "labels.u8")
    probabilities.astype("<f8").tofile(sub / "probabilities.f64")
    return labels, probabilities


def survival_references(d):
    """(metric, reference name, function, quadratic?) on the data of `write_survival`."""
    from sksurv.metrics import (
        brier_score,
        concordance_index_censored,
        concordance_index_ipcw,
        cumulative_dynamic_auc,
        integrated_brier_score,
    )
    from sksurv.util import Surv

    sys.path.insert(0, str(ROOT / "scorer" / "fixtures"))
    from generate import survival_ece

    time_, event, risk = d["time.f64"], d["event.u8"], d["risk.f64"]
    test = Surv.from_arrays(event, time_)
    train = Surv.from_arrays(d["train_event.u8"], d["train_time.f64"])
    grid, curves, h = d["grid.f64"], d["curves.f64"], d["brier_horizon.f64"][0]
    at_h = curves[:, 4]
    return [
        ("c_index", "scikit-survival `concordance_index_censored`", True,
         lambda: concordance_index_censored(event, time_, risk)[0]),
        ("c_index", "lifelines `concordance_index`", False,
         lambda: concordance_index(time_, -risk, event)),
        ("uno_c_index", "scikit-survival `concordance_index_ipcw`", True,
         lambda: concordance_index_ipcw(train, test, risk, tau=d["tau.f64"][0])[0]),
        ("td_auc", "scikit-survival `cumulative_dynamic_auc`", False,
         lambda: cumulative_dynamic_auc(train, test, risk, d["horizons.f64"])[1]),
        ("brier_at_horizon", "scikit-survival `brier_score`", False,
         lambda: brier_score(train, test, at_h, h)[1][0]),
        ("integrated_brier", "scikit-survival `integrated_brier_score`", False,
         lambda: integrated_brier_score(train, test, curves, grid)),
        ("ece_at_horizon", "`fixtures/generate.py` `survival_ece` (lifelines KM per bin)", False,
         lambda: survival_ece(time_, event, at_h, h)),
    ]


def calibration_references(labels, probabilities):
    import statsmodels.api as sm

    sys.path.insert(0, str(ROOT / "scorer" / "fixtures"))
    from generate import ece

    y = labels.astype(float)
    # As fixtures/generate.py's logistic_calibration: logit from p, GLM Binomial, tight tol.
    fit = dict(tol=1e-14, tol_criterion="params", maxiter=200)

    def slope():
        x = np.log(probabilities / (1.0 - probabilities))
        return sm.GLM(y, sm.add_constant(x), family=sm.families.Binomial()).fit(**fit).params[1]

    def intercept():
        x = np.log(probabilities / (1.0 - probabilities))
        return sm.GLM(
            y, np.ones((len(y), 1)), family=sm.families.Binomial(), offset=x
        ).fit(**fit).params[0]

    return [
        ("calibration_slope", "statsmodels `GLM(y, [1, logit p], Binomial)`", False, slope),
        ("calibration_intercept", "statsmodels `GLM(y, 1, Binomial, offset=logit p)`", False, intercept),
        ("ece", "`fixtures/generate.py` `ece` (numpy)", False, lambda: ece(labels, probabilities)),
    ]


def ms(seconds):
    """Milliseconds to three significant figures (at least one decimal below 100)."""
    value = seconds * 1000.0
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def sized_tables(ours, ours_one_thread, theirs, set_name, metrics, sizes):
    """One Markdown table per metric: Rust (all cores, 1 thread) vs each reference, medians."""
    for metric in metrics:
        print()
        print(f"**{metric}** (median ms, best in brackets)")
        print()
        print(
            "| rows | medarena, all cores | medarena, 1 thread | reference | reference time | runs "
            "| speed-up (all cores / 1 thread) | abs. difference |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for rows in sizes:
            key = (set_name, metric, rows)
            if key not in ours:
                continue
            r, one = ours[key], ours_one_thread[key]
            assert r["value"] == one["value"], (key, r, one)
            cells = f"| {rows:,} | {ms(r['median_s'])} ({ms(r['best_s'])}) | {ms(one['median_s'])} ({ms(one['best_s'])}) |"
            for name, result in theirs.get(key, []):
                if isinstance(result, str):
                    print(f"{cells} {name} | {result} | — | — | — |")
                    continue
                value, best, median, runs = result
                diff = abs(value - r["value"])
                print(
                    f"{cells} {name} | {ms(median)} ({ms(best)}) | {runs} | "
                    f"{median / r['median_s']:.1f}x / {median / one['median_s']:.1f}x | {diff:.1e} |"
                )
                assert diff < 1e-9, (key, name, value, r["value"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--small-rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", default="/tmp/scorer-bench")
    parser.add_argument("--suites", default="auc,survival,calibration")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--budget", type=float, default=120.0)
    args = parser.parse_args()
    suites = set(args.suites.split(","))
    sizes = [int(v) for v in args.sizes.split(",")]
    load_before = os.getloadavg()
    directory = pathlib.Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    # Data of suites not run now must not be timed by the Rust side either.
    for pattern in ["*.u8", "*.f64", "survival-*/*", "calibration-*/*"]:
        for stale in directory.glob(pattern):
            stale.unlink()
    for pattern in ["survival-*", "calibration-*"]:
        for stale in directory.glob(pattern):
            stale.rmdir()
    if "auc" in suites:
        rng = np.random.default_rng(7)
        big = write(directory, "", args.rows, rng)
        small = write(directory, "small_", args.small_rows, rng)
    survival_data = {}
    calibration_data = {}
    for n in sizes:
        if "survival" in suites:
            survival_data[n] = write_survival(directory, n, np.random.default_rng([11, n]))
        if "calibration" in suites:
            calibration_data[n] = write_calibration(directory, n, np.random.default_rng([13, n]))

    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binary = target / "release" / "examples" / "bench_metrics"

    def run_ours(threads):
        env = dict(os.environ)
        if threads:
            env["RAYON_NUM_THREADS"] = str(threads)
        out = subprocess.run(
            [str(binary), str(directory), str(args.repeats)],
            check=True, capture_output=True, text=True, env=env,
        ).stdout
        return {(r["set"], r["metric"], r["rows"]): r for r in map(json.loads, out.splitlines())}

    # All cores before the Python timings, one thread after them: on a shared machine the
    # two Rust columns then bracket the load the references ran under.
    ours = run_ours(None)

    theirs = {}
    if "auc" in suites:
        theirs = auc_references(args, big, small)

    sized = {}
    for n, d in survival_data.items():
        for metric, name, quadratic, f in survival_references(d):
            sized.setdefault(("survival", metric, n), []).append((name, quadratic, f))
    for n, (labels, probabilities) in calibration_data.items():
        for metric, name, quadratic, f in calibration_references(labels, probabilities):
            sized.setdefault(("calibration", metric, n), []).append((name, quadratic, f))
    sized_theirs = {}
    last = {}  # (set, metric, reference) -> (rows, median seconds) at the last size timed
    for key in sorted(sized, key=lambda k: (k[0], k[1], k[2])):
        for name, quadratic, f in sized[key]:
            previous = last.get((key[0], key[1], name))
            if previous is not None:
                rows, seconds = previous
                estimate = seconds * (key[2] / rows) ** (2 if quadratic else 1)
                if estimate > args.budget:
                    sized_theirs.setdefault(key, []).append(
                        (name, f"not run (~{estimate:,.0f} s a run, extrapolated from {rows:,} rows)")
                    )
                    last[(key[0], key[1], name)] = (key[2], estimate)
                    continue
            result = timed(args.repeats, args.budget, f)
            sized_theirs.setdefault(key, []).append((name, result))
            last[(key[0], key[1], name)] = (key[2], result[2])
            print(f"timed {key} {name}: {result}", file=sys.stderr)

    ours_one_thread = run_ours(1)

    versions = f"scikit-learn {sklearn.__version__}, lifelines {lifelines.__version__}"
    if survival_data:
        import sksurv

        versions += f", scikit-survival {sksurv.__version__}"
    if calibration_data:
        import statsmodels

        versions += f", statsmodels {statsmodels.__version__}"
    print(f"{versions}, numpy {np.__version__}")
    print(f"cores: {os.cpu_count()}, load average (1/5/15 min) before: {load_before}, after: {os.getloadavg()}")
    if "auc" in suites:
        print()
        auc_table(ours, ours_one_thread, theirs)
    if survival_data:
        sized_tables(ours, ours_one_thread, sized_theirs, "survival", SURVIVAL_METRICS, sizes)
    if calibration_data:
        sized_tables(ours, ours_one_thread, sized_theirs, "calibration", CALIBRATION_METRICS, sizes)


def auc_references(args, big, small):
    theirs = {}
    for rows, (labels, scores, observed, event, prediction) in [(args.rows, big), (args.small_rows, small)]:
        theirs[("", "roc_auc", rows)] = ("scikit-learn roc_auc_score",) + best_of(
            args.repeats, lambda: roc_auc_score(labels, scores)
        )
    labels, scores, observed, event, prediction = small
    theirs[("", "c_index", args.small_rows)] = ("lifelines concordance_index",) + best_of(
        min(args.repeats, 3), lambda: concordance_index(observed, -prediction, event)
    )
    return theirs


def auc_table(ours, ours_one_thread, theirs):
    print(
        "| metric | rows | medarena, all cores: best (median) s | medarena, 1 thread | reference "
        "| reference best (median) s | speed-up all cores / 1 thread | abs. difference |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for key in sorted(k for k in ours if k[0] == ""):
        r, one = ours[key], ours_one_thread[key]
        assert r["value"] == one["value"], (key, r, one)
        cells = f"| {key[1]} | {key[2]:,} | {r['best_s']:.3f} ({r['median_s']:.3f}) | {one['best_s']:.3f} ({one['median_s']:.3f}) |"
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
