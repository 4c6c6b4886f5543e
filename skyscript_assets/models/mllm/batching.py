"""Batch sizing for in-process generation: the largest batch that fits the device.

    batcher = AutoBatcher(("internvl-2b", "cuda:0"), start=4, ceiling=512)
    outputs = batcher.run(requests, run_batch)     # one output per request, in order

The first batches probe upward (4, 8, 16, ... up to `ceiling`); a batch that runs out of
memory (torch.cuda.OutOfMemoryError, or a RuntimeError saying "out of memory") backs off to
the largest size seen to fit (or half) and is retried, so no request is lost to the probe.
Between a fit and a known failure the size grows by bisection and stops when the gap is
within an eighth. What was learnt is remembered per key (model and device) for the life of
the process: the next call starts at the size that fitted and never retries one that failed.

`fixed(size)` keeps one size: it only halves on out-of-memory (the old behaviour).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from skyscript_assets.models.base import is_out_of_memory


@dataclass
class BatchFit:
    """What one (model, device) has shown so far."""

    fits: int = 0  # the largest batch that ran
    fails: int | None = None  # the smallest batch that ran out of memory


_FITS: dict[Hashable, BatchFit] = {}
_LOCK = threading.Lock()


def known_fit(key: Hashable) -> BatchFit:
    """The remembered fit of `key` (a fresh, empty one the first time)."""
    with _LOCK:
        return _FITS.setdefault(key, BatchFit())


def forget(key: Hashable | None = None) -> None:
    """Drop what was learnt for `key` (everything when None); tests start clean with it."""
    with _LOCK:
        if key is None:
            _FITS.clear()
        else:
            _FITS.pop(key, None)


class AutoBatcher:
    def __init__(
        self,
        key: Hashable,
        *,
        start: int,
        ceiling: int,
        grow: bool = True,
        release: Callable[[], None] | None = None,
        on_resize: Callable[[int, str], None] | None = None,
    ):
        self.key = key
        self.start = max(1, min(start, ceiling))
        self.ceiling = max(1, ceiling)
        self.grow = grow
        self.release = release or _release_gpu_memory
        self.on_resize = on_resize  # (new size, why): for logs and benchmarks
        self.fit = known_fit(key)

    @classmethod
    def fixed(cls, key: Hashable, size: int, **kwargs) -> AutoBatcher:
        return cls(key, start=size, ceiling=size, grow=False, **kwargs)

    @property
    def size(self) -> int:
        """The size the next batch will have (before it is capped by the items left)."""
        size = max(self.start, self.fit.fits) if self.grow else self.start
        if self.fit.fails is not None:
            size = min(size, self.fit.fails - 1)
        return max(1, min(size, self.ceiling))

    def run(self, items: Sequence, run_batch: Callable[[Sequence], Sequence]) -> list:
        outputs: list = []
        size, start = self.size, 0
        while start < len(items):
            batch = items[start : start + size]
            out_of_memory = False
            try:
                results = list(run_batch(batch))
            except Exception as exc:
                if not is_out_of_memory(exc) or len(batch) == 1:
                    raise
                out_of_memory = True
            if out_of_memory:  # outside the except block: the traceback's tensors are gone
                self.release()
                size = self._back_off(len(batch))
                continue
            outputs.extend(results)
            start += len(batch)
            size = self._after_success(len(batch), full=len(batch) == size)
        return outputs

    def _back_off(self, failed: int) -> int:
        with _LOCK:
            self.fit.fails = failed if self.fit.fails is None else min(self.fit.fails, failed)
            if self.fit.fits >= failed:  # it fitted before, on shorter inputs
                self.fit.fits = max(1, failed // 2)
            size = self.fit.fits if self.fit.fits else max(1, failed // 2)
        self._tell(size, f"out of memory at {failed}")
        return size

    def _after_success(self, ran: int, *, full: bool) -> int:
        with _LOCK:
            self.fit.fits = max(self.fit.fits, ran)
        if not (self.grow and full):
            return max(1, ran if full else self.size)
        fails = self.fit.fails
        if fails is None:
            candidate = ran * 2
        elif fails - ran > max(1, ran // 8):
            candidate = (ran + fails) // 2
        else:
            candidate = ran  # close enough to the known limit
        candidate = min(candidate, self.ceiling)
        if candidate > ran:
            self._tell(candidate, f"{ran} fitted")
            return candidate
        return ran

    def _tell(self, size: int, why: str) -> None:
        if self.on_resize is not None:
            self.on_resize(size, why)


def _release_gpu_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
