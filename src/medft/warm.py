"""A warm worker for many short torch jobs on one machine (``warm_worker: true``).

Every training, feature, post-hoc or dataset-report job of the workflow is a new Python
process, and on a CPU machine importing torch, torchvision, timm, torchmetrics and
scikit-learn (~8 s) costs more than training a demo-sized cell.
With the warm worker, a job script hands its work to one long-lived process that imported all
of that once and forks a child per job. The job script waits for the child, returns its exit
status, and on SIGTERM kills the child at once, so an interrupted job still resumes from its
last epoch checkpoint. The worker exits after ``IDLE_SECONDS`` without work; its socket name
includes a fingerprint of the installed code, so edited code gets a fresh worker.

Off by default: on a cluster each job runs on its own node and would gain nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from medft.jobs import log_to, run_torch_job_here

log_line = logging.getLogger(__name__)
IDLE_SECONDS = 120
START_TIMEOUT = 300


def socket_path() -> Path:
    package = Path(__file__).parent
    stamp = max(p.stat().st_mtime_ns for p in package.rglob("*.py"))
    key = hashlib.sha1(f"{sys.executable}|{package}|{stamp}".encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"medft-warm-{os.getuid()}-{key}.sock"


def _send(conn, message: dict) -> None:
    conn.sendall((json.dumps(message) + "\n").encode())


class _Job(socketserver.StreamRequestHandler):
    """Runs in a forked child of the worker: one job, output to the job's log."""

    def handle(self) -> None:
        from medft.errors import USER_ERRORS

        request = json.loads(self.rfile.readline())
        os.chdir(request["cwd"])  # the job's relative paths are the job's, not the worker's
        _send(self.connection, {"pid": os.getpid()})
        status = 0
        with log_to(request["log"]):
            try:
                run_torch_job_here(request["job"], request["kwargs"], request["threads"])
            except USER_ERRORS as error:  # a fixable input: one line, as in a cold job
                print(f"error: {error}", file=sys.stderr)
                status = 1
            except BaseException:  # the job's failure is reported; the worker lives on
                traceback.print_exc()
                status = 1
        _send(self.connection, {"status": status})


class _Server(socketserver.ForkingMixIn, socketserver.UnixStreamServer):
    block_on_close = False
    last_work = 0.0

    def process_request(self, request, client_address) -> None:
        self.last_work = time.monotonic()
        super().process_request(request, client_address)


def serve(path: Path) -> None:
    """The worker: import the heavy modules once, then fork a child per job until idle."""
    # Importing these once is the point of the worker; scikit-learn too, which the planner
    # keeps out of its imports (medft.metrics imports it where it computes), and torchmetrics,
    # which the report's calibration imports where it computes.
    import sklearn.metrics  # noqa: F401
    import torchmetrics.functional.classification  # noqa: F401

    import medft.engine  # noqa: F401
    import medft.post_hoc  # noqa: F401
    import medft.report.artefacts  # noqa: F401

    with _Server(str(path), _Job) as server:
        server.timeout = 5
        server.last_work = time.monotonic()
        try:
            while True:
                server.handle_request()
                server.collect_children()
                if server.active_children:
                    server.last_work = time.monotonic()
                elif time.monotonic() - server.last_work > IDLE_SECONDS:
                    break
        finally:
            path.unlink(missing_ok=True)


def _connect(path: Path) -> socket.socket | None:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(str(path))
        return client
    except (FileNotFoundError, ConnectionRefusedError):
        client.close()
        return None


def _start_worker(path: Path) -> socket.socket:
    lock = open(f"{path}.lock", "w")
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one job starts the worker, the others wait for it
        client = _connect(path)
        if client:
            return client
        path.unlink(missing_ok=True)  # left by a worker that died
        subprocess.Popen(
            [sys.executable, "-m", "medft.warm", str(path)],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            client = _connect(path)
            if client:
                return client
            time.sleep(0.2)
    raise RuntimeError(f"the medft warm worker did not start within {START_TIMEOUT} s")


def run_in_worker(job: str, kwargs: dict, threads: int, log: str) -> int:
    """Run one job of ``medft.jobs.TORCH_JOBS`` in the warm worker; returns its exit
    status."""
    path = socket_path()
    client = _connect(path) or _start_worker(path)
    with client, client.makefile("r") as replies:
        _send(
            client,
            {
                "job": job,
                "kwargs": kwargs,
                "threads": threads,
                "log": str(Path(log).resolve()),
                "cwd": os.getcwd(),
            },
        )
        child = json.loads(replies.readline())["pid"]

        def stop(signum, frame):
            os.kill(child, signal.SIGTERM)
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        reply = replies.readline()
    return json.loads(reply)["status"] if reply else 1


if __name__ == "__main__":
    serve(Path(sys.argv[1]))


# Set inside a batch scheduler's job: SLURM, PBS/Torque, LSF, Flux, SGE.
SCHEDULER_JOB_VARIABLES = ("SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID", "FLUX_JOB_ID", "SGE_TASK_ID")


def scheduler_job() -> str | None:
    """``NAME=value`` of the scheduler job this process runs in, if any."""
    for name in SCHEDULER_JOB_VARIABLES:
        if os.environ.get(name):
            return f"{name}={os.environ[name]}"
    return None


def run_torch_job(job: str, kwargs: dict, threads: int, log: str, warm: bool = False) -> None:
    """Entry point of the rules that run torch (``TORCH_JOBS``): in this process, or forked
    from the warm worker — never inside a scheduler's job, whose GPUs, CPUs and memory limits
    a worker started by an earlier job would not have."""
    allocation = scheduler_job() if warm else None
    if allocation:
        with log_to(log):
            log_line.info(
                "warm worker not used: this job runs in a scheduler allocation (%s), and a "
                "worker outlives the job that starts it",
                allocation,
            )
        warm = False
    if warm:
        status = run_in_worker(job, kwargs, threads, log)
        if status:
            raise SystemExit(f"{job} failed (exit status {status}); see {log}")
        return
    with log_to(log):
        run_torch_job_here(job, kwargs, threads)
