"""Progress bars that can be switched off per call and still obey ``TQDM_DISABLE``.

tqdm reads ``TQDM_DISABLE`` (set by headless report runs) only when ``disable`` is not passed, so
passing ``disable=False`` would force a bar into every log. :func:`progress` passes it only to turn a
bar off.
"""

from __future__ import annotations

from collections.abc import Iterable

from tqdm.auto import tqdm


def progress(iterable: Iterable, enabled: bool = True, **options) -> tqdm:
    """``tqdm(iterable, **options)``, or a silent one when ``enabled`` is false."""
    if not enabled:
        options["disable"] = True
    return tqdm(iterable, **options)
