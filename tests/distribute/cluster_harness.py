"""Runs real multi-process clusters on 127.0.0.1 for the distribution tests.

Every task is a fresh Python process in its own process group with its own TF_CONFIG.
Every wait is bounded, and `Cluster` kills the whole process group of every task it
started when it exits, so a failing test leaves no orphan behind.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(REPO, "tests", "distribute", "cluster_worker.py")


def free_ports(n):
    """`n` distinct TCP ports that were free a moment ago."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def tf_config(ports, index):
    return json.dumps({
        "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
        "task": {"type": "worker", "index": index},
    })


def base_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["CUDA_VISIBLE_DEVICES"] = "-1"
    # One intra-op thread per task: 2 tasks share 2 cores with other jobs.
    env["TF_NUM_INTRAOP_THREADS"] = "1"
    env["TF_NUM_INTEROP_THREADS"] = "2"
    env.pop("TF_CONFIG", None)
    return env


class Cluster:
    """Starts `num_tasks` copies of cluster_worker.py with `job` (a JSON-able dict).

    Use as a context manager; `wait(timeout)` returns the exit codes.
    """

    def __init__(self, job, num_tasks, workdir, tag="run"):
        self.job = job
        self.num_tasks = num_tasks
        self.workdir = workdir
        self.tag = tag
        self.procs = []
        self.logs = []

    def __enter__(self):
        ports = free_ports(self.num_tasks) if self.num_tasks > 1 else []
        job_path = os.path.join(self.workdir, f"{self.tag}_job.json")
        with open(job_path, "w") as f:
            json.dump(self.job, f)
        for i in range(self.num_tasks):
            env = base_env()
            if self.num_tasks > 1:
                env["TF_CONFIG"] = tf_config(ports, i)
            log = os.path.join(self.workdir, f"{self.tag}_task{i}.log")
            self.logs.append(log)
            with open(log, "w") as out:
                self.procs.append(subprocess.Popen(
                    [sys.executable, WORKER, job_path, str(i)], env=env, stdout=out,
                    stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True))
        return self

    def wait(self, timeout):
        deadline = time.monotonic() + timeout
        codes = []
        for p in self.procs:
            try:
                codes.append(p.wait(timeout=max(1.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                self.kill_all()
                raise AssertionError(f"cluster task pid {p.pid} still running after "
                                     f"{timeout} s; logs:\n{self.tail()}") from None
        return codes

    def kill(self, index, sig=signal.SIGKILL):
        p = self.procs[index]
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
        p.wait(timeout=30)

    def kill_all(self):
        for i in range(len(self.procs)):
            self.kill(i)

    def tail(self, n=40):
        out = []
        for log in self.logs:
            with open(log, errors="replace") as f:
                lines = f.read().splitlines()
            out.append(f"--- {os.path.basename(log)}\n" + "\n".join(lines[-n:]))
        return "\n".join(out)

    def __exit__(self, *exc):
        self.kill_all()
        return False


def read_steps(path):
    """Per-step records written by cluster_worker's StepLog (one JSON object a line)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip().endswith("}")]


def wait_for_steps(path, n, procs, timeout):
    """Blocks until the step log at `path` holds at least `n` records (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(read_steps(path)) >= n:
            return
        if any(p.poll() is not None for p in procs):
            raise AssertionError(f"a task exited before step {n}")
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {n} steps within {timeout} s")
