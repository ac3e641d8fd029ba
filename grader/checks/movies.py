"""Bonus checks: the notebook's generate_movies, and predictions on the grader's own movies."""

from __future__ import annotations

import numpy as np

from ..readers import Unreadable, read_npz
from .base import Outcome, TaskContext, brief, sentence

__all__ = ["check_movies", "check_movie_prediction", "MOVIES_CALL"]

#: how the harvest calls the notebook's generate_movies
MOVIES_CALL = {"n_samples": 3, "n_frames": 10}
#: each of the two arrays of ``MOVIES_CALL``'s movies is 192 KB as float32; float64 twice that
_MAX_BYTES = 1 << 20


def _load_movies(ctx: TaskContext):
    entry = ctx.namespace.get("movies", {})
    status = entry.get("status")
    if status == "missing":
        return None, "generate_movies is not defined"
    if status == "error":
        return None, f"generate_movies({MOVIES_CALL['n_samples']}, {MOVIES_CALL['n_frames']}) " \
                     f"raised {entry.get('error')}"
    if status != "ok" or ctx.artifacts is None:
        return None, ctx.not_run or "generate_movies could not be called"
    try:  # the kernel wrote it: bounded (a deflate bomb stops at the size its header says)
        arrays = read_npz(ctx.artifacts / "movies.npz", ("noisy", "shifted"),
                          max_bytes=_MAX_BYTES)
    except Unreadable as exc:
        return None, f"its output could not be read: {exc}"
    return (arrays["noisy"], arrays["shifted"]), None


def check_movies(ctx: TaskContext, spec) -> Outcome:
    movies, why = _load_movies(ctx)
    if movies is None:
        stopped = ctx.not_run is not None
        if stopped:
            todo = ctx.stopped_todo()
        elif ctx.namespace.get("movies", {}).get("status") == "missing":
            todo = "Keep the exercise's generate_movies(n_samples, n_frames): it is not defined."
        else:
            todo = sentence(f"Fix generate_movies(): {brief(why)}")
        return Outcome(False, sentence(f"{ctx.label}: {why}"),
                       hint="Keep the exercise's generate_movies(n_samples, n_frames).",
                       cause="notebook_stopped" if stopped else None, todo=todo)
    noisy, shifted = movies
    n, frames = MOVIES_CALL["n_samples"], MOVIES_CALL["n_frames"]
    want = (n, frames, 40, 40, 1)
    problems = []
    for name, arr in (("noisy", noisy), ("shifted", shifted)):
        if arr.shape != want:
            problems.append(f"{name} movies have shape {arr.shape}, expected {want}")
        elif not np.issubdtype(arr.dtype, np.number) or np.nanmin(arr) < 0 \
                or np.nanmax(arr) > 1 or np.isnan(arr).any():
            problems.append(f"{name} movies have values outside [0, 1]")
    if not problems:
        # shifted frame t holds the squares of noisy frame t+1 (noise stays below 0.5)
        agree = np.mean((shifted[:, :-1] >= 0.5) == (noisy[:, 1:] >= 0.5))
        if agree < 0.99:
            problems.append(f"the shifted movies are not the next frames ({agree:.1%} of "
                            "pixels agree)")
    if problems:
        return Outcome(False, f"{ctx.label}: generate_movies({n}, {frames}): "
                              + "; ".join(problems) + ".",
                       todo=f"Fix generate_movies(): {problems[0]}.")
    return Outcome(True, f"{ctx.label}: generate_movies({n}, {frames}) returns two "
                         f"{want} arrays in [0, 1], the second one frame ahead.")


def check_movie_prediction(ctx: TaskContext, spec) -> Outcome:
    """The model maps the grader's movies to movies of the same shape: the trained model when
    there is one (and it is the builder's), else the builder's own."""
    if ctx.evaluation.get("trained"):
        info = ctx.measured()
        if isinstance(info, Outcome):  # why its measurement does not count
            return info
        role = "trained"
    else:
        role, info = "fresh", ctx.evaluation.get("fresh") or {}
    if "prediction_shape" in info:
        got, want = info["prediction_shape"], info["input_shape"]
        model = ctx.task.model if role == "trained" else f"{ctx.task.builder}()"
        if got == want:
            return Outcome(True, f"{ctx.label}: {model} maps the grader's movies "
                                 f"{tuple(want)} to next frames of the same shape.")
        return Outcome(False, f"{ctx.label}: {model} maps movies of shape {tuple(want)} to "
                              f"{tuple(got)}; it should return a movie of the same shape.",
                       hint="Use padding='same' and return_sequences=True in every "
                            "ConvLSTM2D, and end with Conv3D(filters=1).",
                       todo=f"Make {model} return movies of the shape it is given: "
                            f"{tuple(want)} in, {tuple(got)} out.")
    found = ctx.model_info()
    if found:
        error = found[1].get('error', 'unknown error')
        return Outcome(False, sentence(f"{ctx.label}: the model could not predict the grader's "
                                       f"movies: {error}"),
                       todo=f"Make {ctx.task.model} predict movies: {brief(error)}.")
    return ctx.model_missing()
