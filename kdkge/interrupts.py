"""SIGTERM and SIGINT as Ctrl-C: a run that is killed ends KILLED, with its losses kept.

:func:`terminate_like_ctrl_c` (called by :func:`kdkge.app.main`) turns both signals into
``KeyboardInterrupt``; :func:`raise_if_signalled` (called at the end of every epoch by
:class:`kdkge.recording.MetricLog`) raises one that was swallowed.
"""

from __future__ import annotations

#: Signals received (SIGTERM, SIGINT) whose KeyboardInterrupt has not reached :func:`kdkge.app.main` yet.
SIGNALLED: list[int] = []


def raise_if_signalled() -> None:
    """Raise the KeyboardInterrupt of a signal whose first one was swallowed.

    A signal handler's exception that happens to be raised inside a garbage-collection or weakref
    callback (SQLAlchemy registers some) is printed as "Exception ignored" and lost, and training
    would go on for hours.  The handler also records the signal; the end of every epoch
    (:class:`kdkge.recording.MetricLog`) calls this, so a run stops within one epoch whatever happened.
    """
    if SIGNALLED:
        raise KeyboardInterrupt(f"terminated by signal {SIGNALLED[-1]}")


def terminate_like_ctrl_c() -> None:
    """Turn SIGTERM into KeyboardInterrupt, so the run is ended KILLED (and its losses kept)
    instead of staying RUNNING; SLURM sends SIGTERM before it kills a job at its time limit."""
    import signal
    import threading

    def interrupt(signum, frame):
        SIGNALLED.append(signum)
        raise KeyboardInterrupt(f"terminated by signal {signum}")

    def ctrl_c(signum, frame):
        SIGNALLED.append(signum)
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)
        # A process started in the background by a non-interactive shell inherits SIGINT as
        # ignored, and Python then never raises KeyboardInterrupt: make `kill -INT` work anyway.
        signal.signal(signal.SIGINT, ctrl_c)


def caused_by_signal(exc: BaseException) -> bool:
    """Whether ``exc`` is the way a Ctrl-C or SIGTERM surfaced.

    A ``KeyboardInterrupt`` raised by the handler inside library code (Hydra composing a job's
    config, OmegaConf's node bookkeeping) can leave that code half done, and the exception that
    escapes is then another one (e.g. ``AttributeError: 'NoneType' object has no attribute
    '_invalidate_flags_cache'``) with the ``KeyboardInterrupt`` as its cause or context.  True when
    ``exc`` or any exception in its chain is a ``KeyboardInterrupt``, or when a signal was recorded
    by the handlers of :func:`terminate_like_ctrl_c` (:data:`SIGNALLED`).
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return bool(SIGNALLED)
