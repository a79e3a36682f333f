"""Stand-ins for sqeval.scoring.score_job that kill or hang their worker on one file, as a
crash in a C extension or a stuck backend would. Module-level, so that spawned worker
processes can import them by name; every other file is scored for real."""

import os
import time

from sqeval import scoring


def crash_on_crash_wav(job, display_name, options, known=None):
    if display_name == "crash.wav":
        os._exit(1)
    return scoring.score_job(job, display_name, options, known)


def hang_on_slow_wav(job, display_name, options, known=None):
    if display_name == "slow.wav":
        time.sleep(600)
    return scoring.score_job(job, display_name, options, known)
