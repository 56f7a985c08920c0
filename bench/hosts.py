"""Real servers on loopback, for benchmarks and tests: Kerbside under gunicorn, and an S3-compatible store.

One place for what bench/ingest.py, tests/server/test_two_hosts.py and
tests/server/test_blob_stores.py each need: a free port, a gunicorn subprocess serving
Kerbside with its own settings and instance folder (started with `kerbside serve`, as a
deployment does, or with a plain gunicorn command), and moto's standalone S3 server in its
own process. Each is stopped by its `stop()`, which is safe to call twice or after a failed start.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class StartError(RuntimeError):
    """A server did not start."""


def free_port() -> int:
    """A TCP port nothing listens on at this moment, on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, what: str, timeout: float = 60.0):
    """Until something accepts on `port`; StartError if `process` exits first or the time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise StartError(f"{what} exited with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise StartError(f"{what} did not start listening within {timeout:.0f} s") from None
            time.sleep(0.1)


def _stop(process: subprocess.Popen | None, timeout: float = 20.0):
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class GunicornServer:
    """Kerbside under gunicorn in a subprocess, on a free loopback port, with its own instance folder.

    `settings` are environment variables on top of this process's (DATABASE_URL and the
    others in docs/deployment.md). `serve=True` starts it the way a deployment does,
    `kerbside serve --no-migrate` (it builds the field app into the instance folder first);
    otherwise a plain `gunicorn 'server:create_app()'`, which can also run gthread workers.
    `ready_path`, when given, is polled until it answers 200 before `start` returns.
    """

    url: str
    instance: str
    workers: int
    worker_class: str = "sync"
    threads: int = 1
    settings: dict = field(default_factory=dict)
    serve: bool = False
    ready_path: str | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict:
        env = dict(os.environ)
        env.update({
            "DATABASE_URL": self.url,
            "SECRET_KEY": "bench-only-secret",
            "KERBSIDE_INSTANCE": self.instance,
            "KERBSIDE_BLOB_DIR": os.path.join(self.instance, "blobs"),
        })
        env.update(self.settings)
        return env

    def command(self) -> list[str]:
        if self.serve:
            if self.worker_class != "sync":
                raise ValueError("kerbside serve runs sync workers only")
            return [sys.executable, "-m", "server.cli", "serve", "--no-migrate",
                    "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers)]
        command = [sys.executable, "-m", "gunicorn", "-w", str(self.workers), "-k", self.worker_class,
                   "-b", f"127.0.0.1:{self.port}", "--log-level", "warning", "--timeout", "120"]
        if self.worker_class == "gthread":
            command += ["--threads", str(self.threads)]
        return command + ["server:create_app()"]

    def start(self, timeout: float = 60.0, stdout=None):
        """Start and wait until it listens (and, with `ready_path`, answers 200 there)."""
        return self.launch(stdout).wait(timeout)

    def launch(self, stdout=None):
        """Start the process and return at once (several servers can then start side by side)."""
        self.process = subprocess.Popen(self.command(), cwd=ROOT, env=self.environment(),
                                        stdout=stdout, stderr=subprocess.STDOUT if stdout else None)
        return self

    def wait(self, timeout: float = 60.0):
        """Until it listens (and, with `ready_path`, answers 200 there)."""
        started = time.monotonic()
        wait_for_port(self.port, self.process, self.description(), timeout)
        if self.ready_path:
            self._wait_ready(timeout - (time.monotonic() - started))
        else:
            # Every worker imports the app before it accepts; give all of them the time to.
            time.sleep(1.0)
        return self

    def _wait_ready(self, timeout: float):
        deadline = time.monotonic() + max(timeout, 1.0)
        last = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StartError(f"{self.description()} exited with code {self.process.returncode}")
            try:
                # B310 (bandit) is answered: the address is this object's own loopback URL.
                with urllib.request.urlopen(self.base_url + self.ready_path, timeout=5) as answer:  # nosec B310
                    if answer.status == 200:
                        return
            except urllib.error.HTTPError as error:
                last = error.code
            except OSError as error:
                last = error
            time.sleep(0.2)
        raise StartError(f"{self.description()} did not answer 200 at {self.ready_path} (last: {last})")

    def stop(self):
        _stop(self.process)

    def cpu_seconds(self, database: str | None) -> tuple[float, float]:
        """CPU time used so far by the gunicorn workers, and by the PostgreSQL backends of `database`."""
        workers = backends = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as handle:
                    stat = handle.read()
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            parent = int(fields[1])
            worker = parent == self.process.pid
            backend = database is not None and cmdline.startswith("postgres: ") and f" {database} " in cmdline
            used = (int(fields[11]) + int(fields[12])) / tick
            if worker:
                workers += used
            elif backend:
                backends += used
        return workers, backends

    def description(self) -> str:
        threads = f" x {self.threads} threads" if self.worker_class == "gthread" else ""
        return f"gunicorn {self.workers} {self.worker_class} worker{'s' if self.workers > 1 else ''}{threads}"


@dataclass
class MotoS3:
    """moto's standalone S3 server in its own process on a free loopback port, with `buckets` made.

    A real HTTP server (not moto's in-process mock), so what is tested or measured crosses the
    network as it would to MinIO or AWS. It takes any keys; `environment()` gives the AWS
    variables a server process needs to reach it, and keeps boto3 from looking for real ones.
    """

    buckets: tuple[str, ...] = ()
    log_path: str | None = None
    access_key: str = "kerbside-test"
    secret_key: str = "kerbside-test-secret"
    region: str = "us-east-1"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    _log: object = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_DEFAULT_REGION": self.region, "AWS_EC2_METADATA_DISABLED": "true"}

    def client(self):
        """A boto3 S3 client of this server."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name=self.region)

    def start(self, timeout: float = 30.0):
        self._log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 - closed by stop()
        try:
            self.process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                            stdout=self._log, stderr=subprocess.STDOUT)
            wait_for_port(self.port, self.process, "the moto S3 server", timeout)
            client = self.client()
            for bucket in self.buckets:
                client.create_bucket(Bucket=bucket)
        except BaseException:
            self.stop()
            raise
        return self

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """The object names under `prefix` in `bucket`."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))

    def stop(self):
        _stop(self.process, timeout=10)
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self._log = None
