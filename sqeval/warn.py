"""Warnings that point at the user's code: the line outside sqeval that called it.

A fixed ``stacklevel`` is right only for one call path (``score`` → ``run`` → the check
is three frames, ``run`` alone two); this counts sqeval's own frames instead, so a
warning names the user's script and line whichever public function they called.

This module is on the ground floor: it imports nothing from sqeval.
"""

from __future__ import annotations

import inspect
import os
import warnings

PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn(message: str, category: type[Warning] = RuntimeWarning) -> None:
    """``warnings.warn(message, category)`` attributed to the first frame outside the
    sqeval package (the caller's code)."""
    level, frame = 2, inspect.currentframe()  # 1 is this function; 2 its caller
    frame = frame.f_back if frame is not None else None
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
