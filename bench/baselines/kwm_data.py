"""A kwm run's data, split, normalisation and metrics, with the definitions of the C++ code:
launch/training/series.cpp (CSV, long and wide layouts), core/eval/time_split.cpp,
core/models/normalization.cpp and core/eval/forecast_metrics.cpp."""

import csv
import functools
import math
import operator

import numpy as np

CENTRAL_90_QUANTILE = 1.6448536269514722  # kCentral90Quantile


def load_config(path, yaml_module, overrides=()):
    """The run config as a dict; overrides are "a.b.c=value" with the value parsed as YAML."""
    with open(path, encoding="utf-8") as f:
        root = yaml_module.safe_load(f)
    if not isinstance(root, dict) or "data" not in root or "model" not in root:
        raise ValueError(f"{path}: expected a kwm run config with data and model sections")
    for assignment in overrides:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects key.path=value; got '{assignment}'")
        node = root
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml_module.safe_load(value)
    return root


def _is_missing(cell):
    return cell.strip().lower() in ("", "na", "nan")


def read_columns(path, columns):
    """T x len(columns) float array from a CSV with a header row; missing cells are NaN."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    # As core/data/csv_reader.cpp: trailing blank lines are not data; a blank line inside a
    # one-column file is a missing value (it keeps its step); elsewhere it is an error.
    while rows and not any(cell.strip() for cell in rows[-1]):
        rows.pop()
    if not rows:
        raise ValueError(f"{path}: empty file")
    header = [name.strip() for name in rows[0]]
    for r, row in enumerate(rows[1:]):
        if not any(cell.strip() for cell in row):
            if len(header) != 1:
                raise ValueError(f"{path} line {r + 2}: blank line in a file of "
                                 f"{len(header)} columns")
            rows[r + 1] = [""]
    index = []
    for name in columns:
        if name not in header:
            raise ValueError(f"{path}: no column '{name}'; columns are {', '.join(header)}")
        index.append(header.index(name))
    values = np.full((len(rows) - 1, len(columns)), np.nan)
    for r, row in enumerate(rows[1:]):
        for c, i in enumerate(index):
            cell = row[i] if i < len(row) else ""
            if not _is_missing(cell):
                try:
                    values[r, c] = float(cell)
                except ValueError:
                    raise ValueError(f"{path} line {r + 2}: '{cell}' is not a number") from None
    return values


def load_series(data):
    """(outputs T x m, inputs T x n_in, channel names) for a config's `data:` section."""
    columns = list(data["columns"])
    inputs = list(data.get("inputs") or [])
    outputs = read_columns(data["path"], columns)
    if data.get("layout", "long") == "wide":
        if inputs:
            raise ValueError("data.inputs is not supported with data.layout: wide")
        return outputs.reshape(-1, 1), np.zeros((outputs.size, 0)), ["value"]
    u = read_columns(data["path"], inputs) if inputs else np.zeros((len(outputs), 0))
    if not np.all(np.isfinite(u)):
        raise ValueError(f"{data['path']}: input columns must be complete (no missing values)")
    return outputs, u, columns


def split_by_time(steps, fractions):
    """[(begin, end)] for train, validation, test: boundaries round(T f) (half away from 0)."""
    train = float(fractions.get("train", 0.7))
    validation = float(fractions.get("validation", 0.1))
    test = float(fractions.get("test", 0.2))
    if abs(train + validation + test - 1.0) > 1e-9:
        raise ValueError(f"split fractions must sum to 1; got {train}, {validation}, {test}")

    def boundary(fraction):
        x = steps * fraction  # std::llround: halves round away from zero
        whole = math.floor(x)
        return min(max(int(whole) + (1 if x - whole >= 0.5 else 0), 0), steps)

    a, b = boundary(train), boundary(train + validation)
    if a < 1:
        raise ValueError("the training split is empty")
    return {"train": (0, a), "validation": (a, b), "test": (b, steps)}


def fit_scaling(samples):
    """(mean, scale) per column: NaN-aware, population std, scale 1 for constant channels."""
    channels = samples.shape[1]
    mean, scale = np.zeros(channels), np.ones(channels)
    for c in range(channels):
        x = samples[:, c]
        x = x[np.isfinite(x)]
        if x.size == 0:
            continue
        # Sequential sums in time order, two passes, as Normalization::fit.
        m = functools.reduce(operator.add, x.tolist(), 0.0) / x.size
        sd = math.sqrt(functools.reduce(operator.add, ((x - m) ** 2).tolist(), 0.0) / x.size)
        mean[c] = m
        scale[c] = sd if x.size >= 2 and sd > 1e-12 * (1.0 + abs(m)) else 1.0
    return mean, scale


def forecast_metrics(y, mean, variance):
    """Pooled MSE, MAE, Gaussian NLL and 90% coverage over observed entries with a finite
    mean (as ForecastMetricsAccumulator: missing y skipped, NaN means counted as unpredicted)."""
    y, mean = np.asarray(y, float), np.asarray(mean, float)
    variance = np.broadcast_to(np.asarray(variance, float), y.shape)
    observed = ~np.isnan(y)
    scored = observed & ~np.isnan(mean)
    e = (y - mean)[scored]
    var = variance[scored]
    count = int(scored.sum())
    result = {"count": count, "unpredicted": int((observed & np.isnan(mean)).sum())}
    if count == 0:
        result.update(mse=None, mae=None, nll=None, coverage90=None)
        return result
    if not np.all(np.isfinite(var) & (var > 0)):
        raise ValueError("predictive variances must be finite and positive")
    result["mse"] = float(np.mean(e * e))
    result["mae"] = float(np.mean(np.abs(e)))
    result["nll"] = float(np.mean(0.5 * (math.log(2 * math.pi) + np.log(var) + e * e / var)))
    result["coverage90"] = float(np.mean(np.abs(e) <= CENTRAL_90_QUANTILE * np.sqrt(var)))
    return result
