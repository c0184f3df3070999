"""The collector pause: off inside, back on after the last holder, left off if it was off."""

from __future__ import annotations

import gc

import pytest

from chainproof.services.scribe.bulk_gc import cyclic_gc_paused


def test_paused_inside_and_resumed_after_the_last_holder() -> None:
    assert gc.isenabled()
    with cyclic_gc_paused():
        assert not gc.isenabled()
        with cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer holder still holds it
    assert gc.isenabled()


def test_resumed_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), cyclic_gc_paused():
        raise RuntimeError("refused document")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    try:
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
