"""The report's figures, drawn with matplotlib (Agg) and handed out as checked PNG data URIs."""

from __future__ import annotations

import base64
import functools
import io
import json

import numpy as np

__all__ = ["png_data_uri", "history_plot", "histogram_plot", "confusion_plot", "frames_plot",
           "warm"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_data_uri(png: bytes) -> str:
    """A data URI for PNG bytes; anything that is not a PNG is refused."""
    if not png.startswith(_PNG_SIGNATURE) or b"IEND" not in png[-16:]:
        raise ValueError("not a complete PNG image")
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure(width=6.4, height=3.2):
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=90, layout="constrained")


def _render(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return png_data_uri(buf.getvalue())


def warm() -> None:
    """Import matplotlib and its Agg backend (what the first figure would pay for)."""
    _figure()


def history_plot(history: dict[str, list]) -> str | None:
    """Loss and accuracy per epoch, training against validation (the exercise's plot_history).

    Keras 2's key ``acc`` (kept by Keras 3 for ``metrics=['acc']``) counts as the accuracy.
    The last few are kept: the grader draws them while the evaluator finishes.
    """
    try:
        key = json.dumps(history, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError):
        return _history_plot(history)
    return _history_plot_cached(key)


@functools.lru_cache(maxsize=16)
def _history_plot_cached(key: str) -> str | None:
    return _history_plot(json.loads(key))


def _history_plot(history: dict[str, list]) -> str | None:
    if not history or not history.get("loss"):
        return None
    acc = next((k for k in ("accuracy", "acc") if history.get(k)), None)
    panels = [("loss", "Loss")] + ([(acc, "Accuracy")] if acc else [])
    fig = _figure(3.3 * len(panels), 3.0)
    for i, (key, label) in enumerate(panels, 1):
        ax = fig.add_subplot(1, len(panels), i)
        epochs = np.arange(1, len(history[key]) + 1)
        ax.plot(epochs, _numbers(history[key]), marker="o", label="Training")
        if history.get(f"val_{key}"):
            val = _numbers(history[f"val_{key}"])
            ax.plot(np.arange(1, len(val) + 1), val, marker="o", label="Validation")
        ax.set_xlabel("Epochs")
        ax.set_ylabel(label)
        ax.set_xticks(epochs if len(epochs) <= 12 else epochs[::max(1, len(epochs) // 10)])
        ax.margins(x=0.15, y=0.2)  # one epoch is one point: keep it clear of the frame
        ax.legend(loc="best", fontsize=8)
    return _render(fig)


def _numbers(values) -> np.ndarray:
    """History values as floats; a missing one (NaN in the kernel) is a gap, not an error."""
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def histogram_plot(train_prob, y_train, test_prob, y_test) -> str:
    """Predicted probability of 'positive' for train and test reviews of each class."""
    fig = _figure(5.0, 3.4)
    ax = fig.add_subplot()
    bins = np.linspace(0, 1, 11)
    ax.hist(train_prob[y_train == 1], bins=bins, alpha=0.5, color="red", label="train == 1")
    ax.hist(train_prob[y_train == 0], bins=bins, alpha=0.5, color="blue", label="train == 0")
    ax.hist(test_prob[y_test == 1], bins=bins, histtype="step", linewidth=2, color="darkred",
            label="test == 1")
    ax.hist(test_prob[y_test == 0], bins=bins, histtype="step", linewidth=2, color="navy",
            label="test == 0")
    ax.set_xlabel("Probability of being a good review")
    ax.set_ylabel("Number of entries")
    ax.legend(loc="best", fontsize=8)
    return _render(fig)


def confusion_plot(matrix) -> str:
    matrix = np.asarray(matrix)
    fig = _figure(3.2, 3.0)
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, f"{v:,}", ha="center", va="center",
                color="white" if v > matrix.max() / 2 else "black")
    ax.set_xticks([0, 1], ["negative", "positive"])
    ax.set_yticks([0, 1], ["negative", "positive"])
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    return _render(fig)


def frames_plot(track, truth, given: int = 7) -> str:
    """Predicted frames above the true ones for one movie (the exercise's last cell).

    Each row is one image of its frames side by side (gaps left blank): two axes draw in a
    tenth of the time of one axes per frame, and look the same.
    """
    import matplotlib

    n, gap = len(track), 4
    height, width = track.shape[1:3]

    def strip(frames):
        row = np.full((height, n * (width + gap) - gap), np.nan)
        for t in range(n):
            row[:, t * (width + gap):t * (width + gap) + width] = frames[t, :, :, 0]
        return row

    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="white")
    fig = _figure(1.1 * n, 2.6)
    for k, (frames, labels) in enumerate((
            (track, ["input" if t < given else "predicted" for t in range(n)]),
            (truth, ["truth"] * n))):
        ax = fig.add_subplot(2, 1, k + 1)
        ax.imshow(strip(frames), vmin=0, vmax=1, cmap=cmap, interpolation="nearest")
        for t, label in enumerate(labels):
            ax.text(t * (width + gap) + width / 2, -2, label, ha="center", va="bottom",
                    fontsize=7)
        ax.set_axis_off()
    return _render(fig)
