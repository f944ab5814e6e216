"""Launcher for the lmaas test control plane (etcd, kube-apiserver, kube-controller-manager).

The three components are subcommands of one Go binary built from the published
Kubernetes and etcd modules (see main.go). This module builds that binary when
its sources change, starts the components as separate processes on free
loopback ports, waits until the API server is ready and the controllers are
running, applies the CRDs in ``crds/`` and writes a kubeconfig that kubectl and
the Python ``kubernetes`` client use unchanged.

There is no scheduler and no kubelet: pods are created by the real controllers
but stay Pending until a test patches their status.

Standard library only, so it runs before the project's dependencies are installed.

    from tests.cluster import TestCluster

    with TestCluster() as c:
        subprocess.run(["kubectl", "get", "ns"], env=c.env(), check=True)
"""

from __future__ import annotations

import atexit
import base64
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

SRC_DIR = Path(__file__).resolve().parent
REPO_ROOT = SRC_DIR.parent.parent

# The controllers the operator relies on, by their canonical names in
# k8s.io/kubernetes/cmd/kube-controller-manager/names. The short aliases
# ("job", "deployment") also work, but the canonical names are what the
# controller-manager logs.
CONTROLLERS = (
    "job-controller",
    "deployment-controller",
    "replicaset-controller",
    "garbage-collector-controller",
    "pod-garbage-collector-controller",  # fails and removes deleted pods no node will ever stop
    "namespace-controller",
    "horizontal-pod-autoscaler-controller",
    "disruption-controller",  # PodDisruptionBudget status (ModelService makes one)
    "endpointslice-controller",  # the headless Service of a TrainJob
    "serviceaccount-controller",  # the "default" ServiceAccount in each namespace
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",  # kube-root-ca.crt in each namespace
    "ttl-after-finished-controller",
    "persistentvolumeclaim-protection-controller",  # lets a namespace with a PVC finish deleting
)

SERVICE_CIDR = "10.0.0.0/16"  # room for thousands of Services; its first IP, 10.0.0.1, is in the serving cert (certs.go)
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL
TMP_PREFIX = "lmaas-testcluster-"
AGGREGATED_DISCOVERY = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


class ClusterError(RuntimeError):
    """The control plane could not be built or started."""


class PortInUse(ClusterError):
    """A component lost its port to another process between picking and binding it."""


def _log(msg: str) -> None:
    print(f"[testcluster] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- build


def kubernetes_version() -> str:
    """The k8s.io/kubernetes version that go.mod requires, e.g. 'v1.37.2'."""
    m = re.search(r"^\s*k8s\.io/kubernetes\s+(v\S+)", (SRC_DIR / "go.mod").read_text(), re.M)
    if not m:
        raise ClusterError("k8s.io/kubernetes is not required in tests/cluster/go.mod")
    return m.group(1)


def _ldflags() -> str:
    # Clients (kubectl version, discovery) see a real version instead of
    # v0.0.0-master; the values mirror what Kubernetes' own build sets.
    v = kubernetes_version()
    major, minor = v.lstrip("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    return " ".join(
        [
            "-s",
            "-w",
            f"-X {pkg}.gitVersion={v}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    )


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    # Never let go.mod's toolchain line trigger a toolchain download; build with
    # the Go that is installed. CGO off: a static binary, and no C compiler needed.
    env.update(GOTOOLCHAIN="local", CGO_ENABLED="0")
    return env


def _go() -> str:
    go = shutil.which("go")
    if not go:
        raise ClusterError("`go` is not on PATH: it is needed to build the test control plane")
    return go


def go_version() -> str:
    return subprocess.run(
        [_go(), "env", "GOVERSION"], env=_go_env(), capture_output=True, text=True, check=True
    ).stdout.strip()


def source_hash() -> str:
    """Hash of everything the binary depends on: go.mod, go.sum, *.go, Go version, ldflags."""
    h = hashlib.sha256()
    files = [SRC_DIR / "go.mod", SRC_DIR / "go.sum", *sorted(SRC_DIR.glob("*.go"))]
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    h.update(go_version().encode() + b"\0" + _ldflags().encode())
    return h.hexdigest()[:20]


def cache_root() -> Path:
    if os.environ.get("LMAAS_TESTCLUSTER_CACHE"):
        return Path(os.environ["LMAAS_TESTCLUSTER_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(xdg) / "lmaas" / "testcluster"


def build(force: bool = False) -> Path:
    """Return the path of the testcluster binary, building it if its sources changed.

    ``LMAAS_TESTCLUSTER_BIN`` names a prebuilt binary to use instead.
    """
    if os.environ.get("LMAAS_TESTCLUSTER_BIN"):
        return Path(os.environ["LMAAS_TESTCLUSTER_BIN"])
    digest = source_hash()

    def go_build(tmp: Path) -> None:
        cmd = [_go(), "build", "-trimpath", "-ldflags", _ldflags(), "-o", str(tmp), "."]
        proc = subprocess.run(cmd, cwd=SRC_DIR, env=_go_env())
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise ClusterError(f"go build failed (exit {proc.returncode}): {' '.join(cmd)}")

    binary = build_once(cache_root() / digest / "testcluster", force, go_build, f"k8s {kubernetes_version()}")
    _prune_cache(keep=digest)
    return binary


def build_once(binary: Path, force: bool, make: Callable[[Path], None], what: str) -> Path:
    """`binary`, made by `make(path)` unless it exists (or `force`). Concurrent test runs
    (pytest-xdist workers, two terminals) build once; a reader never sees a half-written binary."""
    if binary.exists() and not force:
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    with open(binary.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists() and not force:
            return binary
        tmp = binary.with_name(f"{binary.name}.tmp{os.getpid()}")
        _log(f"building {binary} ({what}); a cold build takes many minutes")
        t0 = time.monotonic()
        make(tmp)
        os.replace(tmp, binary)  # atomic
        _log(f"built in {time.monotonic() - t0:.1f}s")
    return binary


def _prune_cache(keep: str, max_age_s: float = 86400) -> None:
    # Each source change leaves a ~100 MB binary behind; drop those not used for a day.
    for d in cache_root().iterdir():
        try:
            # Only the control plane's builds (named by source_hash); others keep their own (kueue.py).
            if d.is_dir() and re.fullmatch(r"[0-9a-f]{20}", d.name) and d.name != keep and time.time() - d.stat().st_mtime > max_age_s:
                shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass


# --------------------------------------------------------------------------- helpers


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (all held open while picking, so distinct)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_dirs() -> None:
    """Remove temp dirs of launchers that died without cleaning up (e.g. SIGKILL)."""
    for d in Path(tempfile.gettempdir()).glob(TMP_PREFIX + "*"):
        m = re.match(re.escape(TMP_PREFIX) + r"(\d+)-", d.name)
        if m and not _pid_alive(int(m.group(1))):
            shutil.rmtree(d, ignore_errors=True)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class _Proc:
    """One component process, in its own process group, logging to a file."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        log_path: Path,
        env: dict[str, str],
        preexec_fn: Callable[[], None] | None = None,
    ):
        self.name, self.argv, self.log_path, self.env = name, argv, log_path, env
        self.preexec_fn = preexec_fn
        self.popen: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(self.argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                # Own process group: a terminal's Ctrl-C reaches only the
                # launcher, which then stops the components in order.
                start_new_session=True,
                preexec_fn=self.preexec_fn,
            )

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def check(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            log = _tail(self.log_path)
            if "address already in use" in log:
                raise PortInUse(f"{self.name} could not bind its port (address already in use)")
            raise ClusterError(f"{self.name} exited with code {self.popen.returncode}; "
                               f"last lines of {self.log_path}:\n{log}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        p, self.popen = self.popen, None
        if p is None:
            return
        if p.poll() is None:
            self._signal(p, signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                _log(f"{self.name} did not stop in {timeout:.0f}s; killing it")
                self._signal(p, signal.SIGKILL)
                p.wait()
        # Anything the component forked itself dies with its group.
        self._signal(p, signal.SIGKILL)

    @staticmethod
    def _signal(p: subprocess.Popen, sig: int) -> None:
        try:
            os.killpg(p.pid, sig)  # pgid == pid thanks to start_new_session
        except (ProcessLookupError, PermissionError):
            pass


# --------------------------------------------------------------------------- cluster


class TestCluster:
    """A throwaway control plane: etcd + kube-apiserver + kube-controller-manager.

    Use as a context manager, or call start() and stop(). stop() also runs at
    interpreter exit and on SIGTERM, so a killed test run leaves no process or
    temp dir behind.

    Attributes once started: ``kubeconfig`` (path), ``server`` (https URL),
    ``dir`` (temp dir), ``log_dir``, ``ca_file``, ``client_cert``,
    ``client_key``, ``timings`` (seconds per phase of the last start).
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        crds_dir: str | os.PathLike | None = None,
        binary: str | os.PathLike | None = None,
        keep_dir: bool = False,
        start_timeout: float = 120.0,
        verbose: bool = True,
    ):
        self.crds_dir = Path(crds_dir) if crds_dir is not None else REPO_ROOT / "crds"
        self.binary = Path(binary) if binary else None
        self.keep_dir = keep_dir
        self.start_timeout = start_timeout
        self.verbose = verbose
        self.dir: Path | None = None
        self.timings: dict[str, float] = {}
        self._procs: dict[str, _Proc] = {}
        self._lock = threading.RLock()
        self._prev_sigterm = None
        self._ports: dict[str, int] = {}
        self._ctx: tuple[Path, ssl.SSLContext] | None = None

    # -- paths ---------------------------------------------------------------

    @property
    def log_dir(self) -> Path:
        return self._need_dir() / "logs"

    @property
    def kubeconfig(self) -> Path:
        return self._need_dir() / "kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self._need_dir() / "pki" / "ca.crt"

    @property
    def client_cert(self) -> Path:
        return self._need_dir() / "pki" / "admin.crt"

    @property
    def client_key(self) -> Path:
        return self._need_dir() / "pki" / "admin.key"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self._ports['apiserver']}"

    def _need_dir(self) -> Path:
        if self.dir is None:
            raise ClusterError("the test cluster is not started")
        return self.dir

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment for kubectl & co: KUBECONFIG set, discovery cache in the temp dir."""
        env = dict(os.environ if base is None else base)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["KUBECACHEDIR"] = str(self._need_dir() / "kube-cache")
        return env

    # -- lifecycle -----------------------------------------------------------

    def __enter__(self) -> TestCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, attempts: int = 3) -> TestCluster:
        """Build if needed, start everything, wait until ready. Retries on a port clash."""
        binary = self.binary or build()
        _remove_stale_dirs()
        self._install_exit_hooks()
        for attempt in range(1, attempts + 1):
            try:
                self._start_once(binary)
                return self
            except PortInUse as e:
                self.stop()
                if attempt == attempts:
                    raise
                _log(f"port clash ({str(e).splitlines()[0]}); retrying with new ports")
            except BaseException:
                # Keep the logs of a failed start for whoever has to debug it.
                keep, self.keep_dir = self.keep_dir, True
                self.stop()
                self.keep_dir = keep
                raise
        raise AssertionError("unreachable")

    def _start_once(self, binary: Path) -> None:
        t0 = time.monotonic()
        self.timings = {}
        self.dir = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-"))
        self.log_dir.mkdir()
        pki = self.dir / "pki"
        subprocess.run([str(binary), "certs", str(pki)], check=True)
        etcd_client, etcd_peer, apiserver = free_ports(3)
        self._ports = {"etcd": etcd_client, "etcd-peer": etcd_peer, "apiserver": apiserver}
        self._write_kubeconfig()
        env = dict(os.environ, TESTCLUSTER_PARENT_PID=str(os.getpid()))
        b = str(binary)
        etcd_url = f"http://127.0.0.1:{etcd_client}"
        self._procs = {
            "etcd": _Proc(
                "etcd",
                [b, "etcd", "--data-dir", str(self.dir / "etcd"),
                 "--listen-client-url", etcd_url,
                 "--listen-peer-url", f"http://127.0.0.1:{etcd_peer}"],
                self.log_dir / "etcd.log", env),
            "kube-apiserver": _Proc(
                "kube-apiserver", [b, "kube-apiserver", *self._apiserver_args(etcd_url)],
                self.log_dir / "kube-apiserver.log", env),
            "kube-controller-manager": _Proc(
                "kube-controller-manager", [b, "kube-controller-manager", *self._kcm_args()],
                self.log_dir / "kube-controller-manager.log", env),
        }
        deadline = t0 + self.start_timeout

        self._procs["etcd"].start()
        self._wait(lambda: self._http_ok(f"{etcd_url}/health"), ["etcd"], deadline, "etcd /health")
        self.timings["etcd"] = time.monotonic() - t0

        self._procs["kube-apiserver"].start()
        self._wait(self._apiserver_ready, ["etcd", "kube-apiserver"], deadline, "kube-apiserver /readyz")
        self.timings["apiserver"] = time.monotonic() - t0

        # CRDs first: the garbage collector discovers resource types when it starts and only
        # every 30 s after, and would miss the deletion of an owner of a type it does not know yet.
        self._apply_crds(deadline)
        self.timings["crds"] = time.monotonic() - t0
        self._procs["kube-controller-manager"].start()
        # The serviceaccount controller creating default/default proves the
        # controller-manager is up, has synced its caches and is acting.
        self._wait(
            lambda: self.request("GET", "/api/v1/namespaces/default/serviceaccounts/default", ok404=True)
            is not None,
            list(self._procs), deadline, "the controller-manager (default ServiceAccount)")
        self.timings["total"] = time.monotonic() - t0
        if self.verbose:
            t = self.timings
            _log(f"control plane ready in {t['total']:.1f}s (etcd {t['etcd']:.1f}s, "
                 f"apiserver /readyz {t['apiserver']:.1f}s, CRDs {t['crds']:.1f}s); "
                 f"KUBECONFIG={self.kubeconfig}")

    def _apiserver_args(self, etcd_url: str) -> list[str]:
        pki = self.dir / "pki"
        return [
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self._ports['apiserver']}",
            f"--cert-dir={self.dir / 'apiserver-certs'}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-account-issuer={SA_ISSUER}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=RBAC",
            "--allow-privileged=false",
            # The "kubernetes" Service's endpoints would point at the loopback
            # advertise address, which Endpoints validation rejects; nothing in a
            # cluster without pods running needs them.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            # On SIGTERM, drain and then give open connections 2s, instead of
            # --request-timeout (60s): the controller-manager's watches would
            # otherwise hold a stop_apiserver() for a minute.
            "--shutdown-send-retry-after=true",
            # Default admission plugins, PodSecurity among them: tests dry-run pods
            # in namespaces labelled pod-security.kubernetes.io/enforce=restricted.
        ]

    def _kcm_args(self) -> list[str]:
        pki = self.dir / "pki"
        return [
            f"--kubeconfig={self.kubeconfig}",
            f"--controllers={','.join(CONTROLLERS)}",
            "--leader-elect=false",
            "--secure-port=0",  # no metrics/health endpoint: one less port to pick
            "--use-service-account-credentials=false",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
        ]

    def stop(self) -> None:
        """Stop controller-manager, apiserver, etcd (in that order) and remove the temp dir."""
        with self._lock:
            for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
                proc = self._procs.get(name)
                if proc is not None:
                    proc.stop()
            self._procs = {}
            if self.dir is not None:
                if self.keep_dir:
                    _log(f"kept {self.dir}")
                else:
                    shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None
            self._uninstall_exit_hooks()

    def pids(self) -> dict[str, int]:
        """The process id of each running component (etcd, kube-apiserver, kube-controller-manager)."""
        return {name: proc.popen.pid for name, proc in self._procs.items() if proc.running()}

    def stop_apiserver(self) -> None:
        """Stop only the API server (chaos tests); etcd and the controllers keep running."""
        with self._lock:
            self._procs["kube-apiserver"].stop()

    def start_apiserver(self, timeout: float = 60.0) -> float:
        """Start the API server again on the same port; return seconds until /readyz."""
        with self._lock:
            t0 = time.monotonic()
            proc = self._procs["kube-apiserver"]
            if proc.running():
                return 0.0
            deadline = t0 + timeout
            while True:
                proc.start()
                try:
                    self._wait(self._apiserver_ready, ["etcd", "kube-apiserver"], deadline,
                               "kube-apiserver /readyz")
                    return time.monotonic() - t0
                except PortInUse:
                    # Our port may still be in TIME_WAIT or briefly taken: retry it,
                    # since clients already hold a kubeconfig naming it.
                    proc.stop()
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)

    def restart_apiserver(self) -> float:
        self.stop_apiserver()
        return self.start_apiserver()

    # -- exit hooks ----------------------------------------------------------

    def _install_exit_hooks(self) -> None:
        atexit.register(self.stop)
        # Python's default SIGTERM kills the interpreter without running atexit
        # or __exit__; turn it into SystemExit so they run. Only where nobody
        # else owns SIGTERM, and only from the main thread (a Python rule).
        if threading.current_thread() is threading.main_thread() and self._prev_sigterm is None:
            if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                self._prev_sigterm = signal.signal(signal.SIGTERM, _sigterm_to_exit)

    def _uninstall_exit_hooks(self) -> None:
        atexit.unregister(self.stop)
        if self._prev_sigterm is not None and threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGTERM) is _sigterm_to_exit:
                signal.signal(signal.SIGTERM, self._prev_sigterm)
            self._prev_sigterm = None

    # -- readiness, CRDs, kubeconfig -----------------------------------------

    def _wait(self, ready, procs: list[str], deadline: float, what: str) -> None:
        delay = 0.05
        while True:
            for name in procs:
                self._procs[name].check()
            if ready():
                return
            if time.monotonic() > deadline:
                logs = "\n".join(
                    f"--- {n} (last lines of {self._procs[n].log_path}):\n{_tail(self._procs[n].log_path)}"
                    for n in procs)
                raise ClusterError(f"timed out waiting for {what}\n{logs}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    @staticmethod
    def _http_ok(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ctx is None or self._ctx[0] != self.dir:
            ctx = ssl.create_default_context(cafile=str(self.ca_file))
            ctx.load_cert_chain(str(self.client_cert), str(self.client_key))
            self._ctx = (self.dir, ctx)
        return self._ctx[1]

    def _apiserver_ready(self) -> bool:
        try:
            return self.request("GET", "/readyz") is not None
        except ClusterError:
            return False

    def request(self, method: str, path: str, body=None, ok404: bool = False, timeout: float = 10,
                accept: str = "application/json"):
        """A JSON request to the API server as cluster admin; returns the decoded body.

        With ok404, a 404 returns None. Connection errors raise ClusterError.
        """
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Accept", accept)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self._ssl_context(), timeout=timeout) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            if ok404 and e.code == 404:
                return None
            raise ClusterError(f"{method} {path}: HTTP {e.code}: {e.read()[:500]!r}") from None
        except (OSError, urllib.error.URLError) as e:
            raise ClusterError(f"{method} {path}: {e}") from None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")

    def _crd_files(self) -> list[Path]:
        if not self.crds_dir.is_dir():
            return []
        return sorted(
            p for p in self.crds_dir.iterdir()
            if p.suffix in (".yaml", ".yml", ".json") and not p.stem.startswith("kustomization"))

    def _apply_crds(self, deadline: float) -> None:
        files = self._crd_files()
        if not files:
            return
        kubectl = shutil.which("kubectl")
        if not kubectl:
            raise ClusterError(f"kubectl is not on PATH; it is needed to apply {self.crds_dir}")
        args = [a for f in files for a in ("-f", str(f))]
        self._kubectl([kubectl, "apply", "--server-side", *args])
        left = max(5, int(deadline - time.monotonic()))
        self._kubectl([kubectl, "wait", "--for=condition=Established", f"--timeout={left}s", *args])
        # Established is not the end: discovery, which kubectl reads to resolve
        # `kubectl get trainjobs` or a category, catches up a moment later.
        self._wait(self._crds_discoverable, list(self._procs), deadline, "CRDs in discovery")

    def _crds_discoverable(self) -> bool:
        crds = self.request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]
        want = {(c["spec"]["group"], v["name"], c["spec"]["names"]["plural"])
                for c in crds for v in c["spec"]["versions"] if v.get("served")}
        # Aggregated discovery (one document for all groups) is what kubectl uses.
        doc = self.request("GET", "/apis", accept=AGGREGATED_DISCOVERY)
        have = {(g["metadata"]["name"], v["version"], r["resource"])
                for g in doc.get("items", []) for v in g.get("versions", [])
                for r in v.get("resources", [])}
        return want <= have

    def _kubectl(self, argv: list[str]) -> None:
        env = self.env()
        # A discovery cache of its own: the one in env() must not remember the
        # API as it was before the CRDs (kubectl would miss e.g. their categories).
        env["KUBECACHEDIR"] = str(self._need_dir() / "launcher-kube-cache")
        p = subprocess.run(argv, env=env, capture_output=True, text=True)
        if p.returncode != 0:
            raise ClusterError(f"{' '.join(argv)} failed ({p.returncode}):\n{p.stdout}{p.stderr}")

    def _write_kubeconfig(self) -> None:
        def b64(p: Path) -> str:
            return base64.b64encode(p.read_bytes()).decode()

        # JSON is YAML: kubectl and the Python kubernetes client both read it.
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "lmaas-test", "cluster": {
                "server": self.server, "certificate-authority-data": b64(self.ca_file)}}],
            "users": [{"name": "admin", "user": {
                "client-certificate-data": b64(self.client_cert),
                "client-key-data": b64(self.client_key)}}],
            "contexts": [{"name": "lmaas-test", "context": {"cluster": "lmaas-test", "user": "admin"}}],
            "current-context": "lmaas-test",
            "preferences": {},
        }
        self.kubeconfig.write_text(json.dumps(cfg, indent=2) + "\n")
        self.kubeconfig.chmod(0o600)


def _sigterm_to_exit(signum, frame):
    raise SystemExit(128 + signum)
