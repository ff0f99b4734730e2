import gc
import importlib
import sys

from regulator.startup import warm_up_and_freeze


def test_warm_up_freezes_the_start_up_heap():
    gc.unfreeze()
    try:
        frozen = warm_up_and_freeze()
        assert frozen > 10_000  # every view module and the URLconf are loaded
        # Reference counting still frees a frozen object now and then (another thread of the test
        # process may drop one at any moment): "about the same", not "exactly the same".
        assert gc.get_freeze_count() >= frozen * 0.99
        gc.collect()
        assert gc.get_freeze_count() >= frozen * 0.99  # a full collection leaves the frozen objects alone
    finally:
        gc.unfreeze()


def test_the_asgi_entry_point_freezes_after_loading():
    gc.unfreeze()
    try:
        if "regulator.asgi" in sys.modules:
            module = importlib.reload(sys.modules["regulator.asgi"])
        else:
            module = importlib.import_module("regulator.asgi")
        assert module.application is not None
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
