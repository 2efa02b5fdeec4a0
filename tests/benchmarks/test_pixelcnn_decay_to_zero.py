"""`benchmarks/pixelcnn_nll.py --decay-to-zero`: the rate falls with the CPU time spent and is
(near) 0 when the budget stops training; without the flag it stays constant."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
import pixelcnn_nll  # noqa: E402

TINY = ["--cpu-minutes", "0.05", "--filters", "4", "--num-layers", "1", "--num-test", "20",
        "--sample-images", "1", "--batch-size", "16"]


@pytest.mark.slow
def test_decay_to_zero_ends_the_budget_near_zero_and_the_default_stays_constant(mnist_path):
    decayed = pixelcnn_nll.main(["--mnist", mnist_path, *TINY, "--decay-to-zero"])
    # Every step that begins after the budget ran out gets rate 0; the rate left is non-zero
    # only if the last step began before that, and then it is at most one step's CPU time over
    # the budget (~10 ms of 3 CPU-seconds), far under the 20% allowed here.
    assert decayed["steps"] > 50
    assert 0.0 <= decayed["final_learning_rate"] < 0.2 * 1e-3
    assert "linearly to 0" in decayed["architecture"]
    constant = pixelcnn_nll.main(["--mnist", mnist_path, *TINY])
    assert constant["final_learning_rate"] == pytest.approx(1e-3)
