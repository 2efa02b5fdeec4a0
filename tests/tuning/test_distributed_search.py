"""KerasTuner's chief/worker search: a real chief and two worker processes on 127.0.0.1."""

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.distribute.cluster_harness import base_env, free_ports
from tests.tuning.tiny import BASE, write


@pytest.mark.slow
def test_chief_and_two_workers_split_a_three_trial_search(tmp_path):
    config = write(tmp_path / "c.yaml", BASE)
    # The objective comes from `keras-aigc evaluate` (test NLL), as a user would tune a VAE.
    space = write(tmp_path / "s.yaml", {
        "objective": "test_nll", "source": "evaluate",
        "evaluate": {"num_samples": 64, "nll_samples": 4},
        "hyperparameters": {"compile.optimizer.config.learning_rate": {
            "choices": [1.0e-4, 1.0e-3, 3.0e-3]}}})
    out = tmp_path / "search"
    (port,) = free_ports(1)
    procs = {}
    try:
        for role in ("chief", "tuner0", "tuner1"):
            env = {**base_env(), "KERASTUNER_TUNER_ID": role,
                   "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port)}
            log = open(tmp_path / f"{role}.log", "w")
            procs[role] = subprocess.Popen(
                [sys.executable, "-m", "keras_aigc.cli.main", "tune", config, "--space", space,
                 "--trials", "3", "--algorithm", "random", "--seed", "1", "--output", str(out)],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        codes = {role: p.wait(timeout=1500) for role, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    logs = {role: (tmp_path / f"{role}.log").read_text() for role in procs}
    assert codes == {"chief": 0, "tuner0": 0, "tuner1": 0}, logs
    best = json.loads((out / "best.json").read_text())
    trials = best["trials"]
    assert len(trials) == 3 and {t["status"] for t in trials} == {"COMPLETED"}
    # The workers ran the trials (the chief only served the oracle), and both took some.
    assert sorted(t["tuner"] for t in trials).count("chief") == 0
    assert {t["tuner"] for t in trials} == {"tuner0", "tuner1"}
    for t in trials:
        metrics = json.loads((open(os.path.join(t["run_dir"], "metrics.json")).read()))
        assert metrics["test_nll"] == pytest.approx(t["test_nll"])
    assert best["best_value"] == min(t["test_nll"] for t in trials)
    assert "Best trial" in logs["chief"] and "the chief writes the summary" in logs["tuner0"]
