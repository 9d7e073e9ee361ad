"""Real services for tests: munge, a one-node SLURM cluster, MLflow, Chromium.

Every service is started in its own process group, bound to 127.0.0.1, waited
for with its own timeout, and stopped by process group in a finalizer. State,
configuration and logs live in one temporary folder per service stack.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

LOCALHOST = "127.0.0.1"


def in_ci() -> bool:
    """True where a missing program must fail the test (``THERMIA_CI=1``)."""
    return os.environ.get("THERMIA_CI") == "1"


def require(*programs: str) -> None:
    """Skip (or, in CI, fail) the calling test unless every program is on PATH."""
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        reason = ", ".join(f'shutil.which("{p}") is None' for p in missing)
        if in_ci():
            pytest.fail(f"THERMIA_CI=1 but {reason} (see .ci/services.sh)")
        pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((LOCALHOST, 0))
        return probe.getsockname()[1]


def port_open(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((LOCALHOST, port)) == 0


def service_folder(prefix: str) -> Path:
    """A fresh folder readable by service users (pytest's tmp dirs are 0700)."""
    folder = Path(tempfile.mkdtemp(prefix=f"thermia-{prefix}-"))
    folder.chmod(0o755)
    return folder


def run(
    command: Sequence[str],
    timeout: float = 30,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """Run a client command in its own process group; kill the group on timeout."""
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=None if env is None else {**os.environ, **env},
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        raise RuntimeError(f"{command[0]} timed out after {timeout} s: {err}") from None
    if check and process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}: {err}")
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class Service:
    """A daemon run in the foreground in its own process group, logging to a file.

    Parameters
    ----------
    name : str
        Short name; its stdout goes to ``<folder>/<name>.out``, its stderr to
        ``<folder>/<name>.err``.
    command : sequence of str
        The daemon's command line (it must stay in the foreground).
    folder : Path
        Where the log goes.
    env : mapping, optional
        Variables added to the environment.
    user : str, optional
        Run as this user (and its group) instead of the caller.
    """

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        folder: Path,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
    ) -> None:
        self.name = name
        self.stdout = folder / f"{name}.out"
        self.stderr = folder / f"{name}.err"
        with self.stdout.open("w") as out, self.stderr.open("w") as err:
            self.process = subprocess.Popen(
                list(command),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                start_new_session=True,
                user=user,
                group=user,
            )

    def tail(self, n: int = 3000) -> str:
        """The end of the service's own output (stdout, then stderr)."""
        text = "".join(
            p.read_text(errors="replace") for p in (self.stdout, self.stderr)
        )
        return text[-n:]

    def wait_until(
        self, ready: Callable[[], bool], timeout: float, what: str = "ready"
    ) -> None:
        """Poll ``ready`` until it holds; fail if the daemon exits or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited {self.process.returncode} before {what}:\n"
                    f"{self.tail()}"
                )
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(0.3)
        raise TimeoutError(f"{self.name} not {what} after {timeout} s:\n{self.tail()}")

    def stop(self, grace: float = 10) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds."""
        pgid = self.process.pid
        _killpg(pgid, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _killpg(pgid, signal.SIGKILL)
            self.process.wait(timeout=grace)
        # Children left in the group after the leader exited.
        _killpg(pgid, signal.SIGKILL)


@contextlib.contextmanager
def started(stack: contextlib.ExitStack, service: Service) -> Iterator[Service]:
    """Register ``service.stop`` on ``stack`` at once, so a failed start still stops."""
    stack.callback(service.stop)
    yield service


# --- munge -----------------------------------------------------------------


def start_munge(stack: contextlib.ExitStack, folder: Path, timeout: float) -> Path:
    """Start munged with its own key and socket; return the socket path."""
    home = folder / "munge"
    home.mkdir(mode=0o755)
    key = home / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    shutil.chown(home, "munge", "munge")
    shutil.chown(key, "munge", "munge")
    sock = home / "munge.socket"
    with started(
        stack,
        Service(
            "munged",
            [
                "munged",
                "--foreground",
                "--force",
                f"--key-file={key}",
                f"--socket={sock}",
                f"--pid-file={home / 'munged.pid'}",
                f"--log-file={home / 'munged.log'}",
                f"--seed-file={home / 'munged.seed'}",
            ],
            folder,
            user="munge",
        ),
    ) as munged:
        munged.wait_until(
            lambda: run(["munge", f"--socket={sock}", "-n"], timeout=5).returncode == 0,
            timeout,
            "answering on its socket",
        )
    return sock


# --- MariaDB + slurmdbd + slurmctld + slurmd --------------------------------


@dataclass(frozen=True)
class Cluster:
    """A running one-node SLURM cluster with accounting."""

    folder: Path
    conf: Path
    account: str
    partition: str

    @property
    def env(self) -> dict[str, str]:
        """Environment for SLURM clients (sbatch, sacct, ...) to find this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def client(self, *command: str, timeout: float = 30) -> str:
        """Run a SLURM client command against this cluster; return its stdout."""
        return run(command, timeout=timeout, env=self.env).stdout

    def jobs(self, steps: bool = False) -> list[dict[str, str]]:
        """Jobs (and their steps) as slurmdbd recorded them, oldest first.

        Each job is a dict of JobID, JobName, State, ExitCode, Account, Partition
        and Comment (the executor writes the rule or group name there).
        """
        fields = ["JobID", "JobName", "State", "ExitCode", "Account", "Partition"]
        out = self.client(
            "sacct",
            "--allusers",
            "--parsable2",
            "--noheader",
            *([] if steps else ["-X"]),
            "--starttime=now-1days",
            f"--format={','.join(fields)},Comment%200",
        )
        rows = [line.split("|") for line in out.splitlines() if line]
        return [dict(zip([*fields, "Comment"], r, strict=True)) for r in rows]


SLURM_CONF = """\
ClusterName=thermia
SlurmctldHost=localhost({host})
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={munge}
CredType=cred/munge
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
MinJobAge=300
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost={host}
AccountingStoragePort={dbd_port}
AccountingStoragePass={munge}
AccountingStoreFlags=job_comment
NodeName=localhost NodeAddr={host} CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName={partition} Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""

SLURMDBD_CONF = """\
AuthType=auth/munge
AuthInfo=socket={munge}
DbdHost=localhost
DbdAddr={host}
DbdPort={dbd_port}
SlurmUser=root
LogFile={folder}/slurmdbd.log
PidFile={folder}/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost={host}
StoragePort={db_port}
StorageUser=slurm
StoragePass={db_password}
StorageLoc=slurm_acct_db
"""


def start_mariadb(
    stack: contextlib.ExitStack, folder: Path, password: str, timeout: float
) -> int:
    """Start a private MariaDB on 127.0.0.1 with a ``slurm`` user; return its port."""
    data = folder / "mariadb"
    sock = folder / "mariadb.sock"
    run(
        [
            "mariadb-install-db",
            "--no-defaults",
            f"--datadir={data}",
            "--user=root",
            "--skip-test-db",
            "--auth-root-authentication-method=socket",
        ],
        timeout=timeout,
    )
    port = free_port()
    with started(
        stack,
        Service(
            "mariadbd",
            [
                "mariadbd",
                "--no-defaults",
                f"--datadir={data}",
                f"--socket={sock}",
                f"--port={port}",
                f"--bind-address={LOCALHOST}",
                f"--pid-file={folder / 'mariadbd.pid'}",
                "--user=root",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=32M",
                "--innodb-lock-wait-timeout=900",
            ],
            folder,
        ),
    ) as mariadbd:
        mariadbd.wait_until(lambda: port_open(port), timeout, "listening")
    grant = (
        f"CREATE USER 'slurm'@'{LOCALHOST}' IDENTIFIED BY '{password}';"
        f"GRANT ALL ON slurm_acct_db.* TO 'slurm'@'{LOCALHOST}';"
    )
    run(["mariadb", "--no-defaults", f"--socket={sock}", "-uroot", "-e", grant])
    return port


@contextlib.contextmanager
def slurm_cluster(timeout: float = 90) -> Iterator[Cluster]:
    """A one-node SLURM cluster with accounting (slurmdbd on MariaDB), all local.

    ``slurm.conf`` is also linked at ``/etc/slurm/slurm.conf`` when no file is
    there: the Snakemake executor drops ``SLURM_CONF`` from a job's environment,
    so ``srun`` inside a job finds the cluster only there. The link, and every
    daemon, is removed again on exit; jobs still queued are cancelled first.
    """
    folder = service_folder("slurm")
    account, partition = "thermia", "debug"
    values = {
        "host": LOCALHOST,
        "folder": folder,
        "ctld_port": free_port(),
        "slurmd_port": free_port(),
        "dbd_port": free_port(),
        "db_password": os.urandom(8).hex(),
        "cpus": os.cpu_count() or 1,
        "memory": 16000,
        "partition": partition,
    }
    for name in ("state", "spool"):
        (folder / name).mkdir()
    with contextlib.ExitStack() as stack:
        values["munge"] = start_munge(stack, folder, timeout)
        values["db_port"] = start_mariadb(stack, folder, values["db_password"], timeout)
        conf = folder / "slurm.conf"
        conf.write_text(SLURM_CONF.format(**values))
        dbd_conf = folder / "slurmdbd.conf"
        dbd_conf.write_text(SLURMDBD_CONF.format(**values))
        dbd_conf.chmod(0o600)
        env = {"SLURM_CONF": str(conf)}
        cluster = Cluster(folder, conf, account, partition)
        with started(stack, Service("slurmdbd", ["slurmdbd", "-D"], folder, env)) as d:
            d.wait_until(lambda: port_open(values["dbd_port"]), timeout, "listening")
        _link_system_conf(stack, conf)
        with started(
            stack, Service("slurmctld", ["slurmctld", "-D", "-i"], folder, env)
        ) as ctld:
            ctld.wait_until(
                lambda: "UP" in cluster.client("scontrol", "ping", timeout=5),
                timeout,
                "answering scontrol ping",
            )
        with started(
            stack, Service("slurmd", ["slurmd", "-D", "-N", "localhost"], folder, env)
        ) as slurmd:
            slurmd.wait_until(
                lambda: "idle" in cluster.client("sinfo", "-h", "-o", "%T", timeout=5),
                timeout,
                "idle in sinfo",
            )
        stack.callback(_cancel_all, cluster)
        ctld.wait_until(
            lambda: "thermia" in cluster.client("sacctmgr", "-n", "list", "cluster"),
            timeout,
            "registered with slurmdbd",
        )
        cluster.client("sacctmgr", "-i", "add", "account", account, "cluster=thermia")
        user = subprocess.run(
            ["id", "-un"], capture_output=True, text=True, check=True
        ).stdout.strip()
        cluster.client(
            "sacctmgr",
            "-i",
            "add",
            "user",
            user,
            f"account={account}",
            "cluster=thermia",
        )
        yield cluster


def _cancel_all(cluster: Cluster) -> None:
    with contextlib.suppress(Exception):
        cluster.client("scancel", "--full", "--partition", cluster.partition)
        time.sleep(1)


def _link_system_conf(stack: contextlib.ExitStack, conf: Path) -> None:
    system = Path("/etc/slurm/slurm.conf")
    if system.exists() or system.is_symlink():
        return
    made_dir = not system.parent.exists()
    system.parent.mkdir(parents=True, exist_ok=True)
    system.symlink_to(conf)

    def unlink() -> None:
        if system.is_symlink() and system.readlink() == conf:
            system.unlink()
        if made_dir:
            with contextlib.suppress(OSError):
                system.parent.rmdir()

    stack.callback(unlink)


# --- MLflow server and Chromium ----------------------------------------------


@dataclass(frozen=True)
class MlflowServer:
    """A running ``mlflow server`` with an SQLite store and a local artifact root."""

    url: str
    folder: Path

    def post(self, endpoint: str, body: Mapping) -> dict:
        """POST a JSON body to ``/api/2.0/mlflow/<endpoint>``; return the reply."""
        request = urllib.request.Request(
            f"{self.url}/api/2.0/mlflow/{endpoint}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            return json.loads(reply.read())

    def get(self, path: str) -> bytes:
        """GET ``path`` (relative to the server root) and return the body."""
        with urllib.request.urlopen(f"{self.url}/{path}", timeout=30) as reply:
            return reply.read()


@contextlib.contextmanager
def mlflow_server(timeout: float = 90) -> Iterator[MlflowServer]:
    """``mlflow server`` on a free port of 127.0.0.1, one worker, no job runner."""
    folder = service_folder("mlflow")
    port = free_port()
    url = f"http://{LOCALHOST}:{port}"
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        LOCALHOST,
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{folder}/mlflow.db",
        "--artifacts-destination",
        str(folder / "artifacts"),
        "--workers",
        "1",
    ]
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with contextlib.ExitStack() as stack:
        with started(stack, Service("mlflow", command, folder, env)) as server:
            server.wait_until(
                lambda: (
                    urllib.request.urlopen(f"{url}/health", timeout=2).status == 200
                ),
                timeout,
                "healthy",
            )
        yield MlflowServer(url, folder)


def chromium_render(
    url: str, folder: Path, screenshot: Path | None = None, timeout: float = 90
) -> str:
    """Render ``url`` in headless Chromium and return the DOM; save a screenshot.

    One browser run for the DOM dump and, if ``screenshot`` is given, one for
    the PNG; each with a fresh empty profile and in its own process group,
    killed as a group when done or after ``timeout`` seconds.
    """
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,900",
        "--virtual-time-budget=20000",
    ]
    dom = ""
    runs = [("dom", "--dump-dom")]
    if screenshot is not None:
        runs.append(("png", f"--screenshot={screenshot}"))
    for kind, flag in runs:
        profile = Path(tempfile.mkdtemp(prefix=f"chromium-{kind}-", dir=folder))
        command = ["chromium", *flags, f"--user-data-dir={profile}", flag, url]
        browser = Service(f"chromium-{kind}", command, folder)
        try:
            browser.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(
                f"chromium ({kind}) not done after {timeout} s:\n{browser.tail()}"
            ) from None
        finally:
            browser.stop(grace=5)
        if kind == "dom":
            dom = browser.stdout.read_text(errors="replace")
    return dom
