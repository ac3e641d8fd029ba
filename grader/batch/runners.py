"""Where the submissions of a batch are graded: local worker threads, each waiting on a grading
process of its own, or the task slots of a Dask cluster. Both yield (job, outcome) as each
submission finishes, in the order they finish."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed

from . import worker
from .discover import Job
from .progress import Progress
from .worker import Settings, cores

__all__ = ["default_workers", "run_local", "run_dask"]


def default_workers(threads: int | None = None) -> int:
    """As many workers as the cores allow at ``threads`` each, and memory at ~3 GB each."""
    available = cores()
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 0
    by_memory = max(1, memory // (3 << 30)) if memory else available
    return max(1, min(available // max(1, threads or 1), by_memory))


def run_local(jobs: list[Job], settings: Settings, workers: int,
              progress: Progress) -> Iterator[tuple[Job, dict]]:
    def work(job):
        progress.started_one()
        return worker.run_job(job, settings)  # looked up when called: tests replace it

    pool = ThreadPoolExecutor(workers, thread_name_prefix="ex8-grade")
    futures = {pool.submit(work, job): job for job in jobs}
    try:
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        for future in futures:
            future.cancel()
        worker.stop_children()  # stopped early (Ctrl-C, an error here): the children unwind too
        pool.shutdown(wait=True)


def run_dask(jobs: list[Job], settings: Settings, address: str,
             progress: Progress) -> Iterator[tuple[Job, dict]]:
    from distributed import Client
    from distributed import as_completed as dask_completed

    with Client(address, set_as_default=False) as client:
        slots = sum(client.nthreads().values())
        futures = {client.submit(worker.run_job, job, settings, pure=False,
                                 key=f"grade-{job.folder}-{uuid.uuid4().hex[:8]}"): job
                   for job in jobs}
        progress.slots = slots
        try:
            # this client is not the default one (the caller may have its own): as_completed
            # is told whose loop to use, or it looks for a default client and finds none
            for future, value in dask_completed(futures, loop=client.loop, with_results=True,
                                                raise_errors=False):
                if isinstance(value, BaseException):  # the worker itself died (KilledWorker)
                    value = {"error": f"The Dask worker grading it failed "
                                      f"({type(value).__name__}: {value}).",
                             "kind": type(value).__name__}
                yield futures[future], value
        finally:
            client.cancel(list(futures))
