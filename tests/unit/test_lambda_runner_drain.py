"""drain() waits for asynchronous invocations, including one registered a moment before its thread starts."""

from __future__ import annotations

import threading

from localcloud import lambda_runner


def test_drain_waits_for_an_invocation_registered_before_its_thread_started() -> None:
    # Given an asynchronous invocation registered in flight whose thread has not started yet
    done = threading.Event()
    thread = threading.Thread(target=done.set, daemon=True)
    with lambda_runner._pending_lock:
        lambda_runner._state.pending.add(thread)
    try:
        # When drain is asked to wait (briefly) before the thread starts
        # Then it waits instead of failing ("cannot join thread before it is started")
        assert lambda_runner.drain(timeout=0.05) is False
        # And once the thread has run and left the set, drain is done
        thread.start()
        thread.join()
        with lambda_runner._pending_lock:
            lambda_runner._state.pending.discard(thread)
        assert lambda_runner.drain(timeout=1) is True
    finally:
        with lambda_runner._pending_lock:
            lambda_runner._state.pending.discard(thread)
    assert done.is_set()
