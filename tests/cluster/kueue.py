"""Kueue on the test control plane: built from its published Go module, started as its own
process when a test asks for it, its webhooks reached by the API server on loopback.

Kueue is its own binary, not a subcommand of the control plane's: v0.17 is built against
k8s.io/* v0.35 and controller-runtime v0.23, the control plane against v0.37, and one Go module
can hold only one version of each. `go install sigs.k8s.io/kueue/cmd/kueue@VERSION` builds it with
the versions it was released with (checked against the Go checksum database); the binary is
cached beside the control plane's.

    with TestCluster() as cluster, Kueue(cluster):
        ...  # Jobs labelled kueue.x-k8s.io/queue-name wait for a ClusterQueue's quota

Needs PyYAML (the tests' dependencies), unlike the launcher.
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from .launcher import ClusterError, TestCluster, _go, _go_env, _Proc, build_once, cache_root, free_ports, go_version

VERSION = "v0.17.0"
MODULE = "sigs.k8s.io/kueue"
NAMESPACE = "kueue-system"
FRAMEWORKS = ["batch/job"]
WEBHOOK_GROUPS = {"batch", "kueue.x-k8s.io"}
"""The webhooks registered: Jobs' and Kueue's own types (the others serve frameworks not enabled,
and a pod or Deployment webhook would stand in the way of every other test while Kueue is off)."""
METRICS_CERTS = Path("/etc/kueue/metrics/certs")
"""Where Kueue v0.17 reads its metrics server's certificate when it does not manage its own
certificates (a fixed path in cmd/kueue/main.go, the mount point of its Deployment's Secret): it
exits at start without a readable pair there, even with metrics off."""
START_TIMEOUT = 90.0


def build(force: bool = False) -> Path:
    """The kueue binary, built once per Kueue and Go version."""

    def go_install(tmp: Path) -> None:
        gobin = tmp.with_name(f"gobin{os.getpid()}")
        env = {**_go_env(), "GOBIN": str(gobin), "GOFLAGS": ""}
        cmd = [_go(), "install", "-trimpath", "-ldflags", "-s -w", f"{MODULE}/cmd/kueue@{VERSION}"]
        proc = subprocess.run(cmd, env=env)
        if proc.returncode != 0:
            raise ClusterError(f"go install failed (exit {proc.returncode}): {' '.join(cmd)}")
        os.replace(gobin / "kueue", tmp)
        gobin.rmdir()

    return build_once(cache_root() / f"kueue-{VERSION}-{go_version()}" / "kueue", force, go_install, f"kueue {VERSION}")


def module_dir() -> Path:
    """Kueue's module in the Go module cache (its CRDs and webhook manifests)."""
    out = subprocess.run(
        [_go(), "mod", "download", "-json", f"{MODULE}@{VERSION}"],
        env={**_go_env(), "GOFLAGS": ""},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return Path(json.loads(out)["Dir"])


def crds(module: Path) -> list[dict[str, Any]]:
    """Kueue's CRDs (the bases: no conversion webhook, v1beta2 stored and served)."""
    return [
        yaml.safe_load(path.read_text()) for path in sorted((module / "config/components/crd/bases").glob("*.yaml"))
    ]


def webhook_configurations(module: Path, base_url: str, ca_bundle: str) -> list[dict[str, Any]]:
    """Kueue's webhook configurations, cut to WEBHOOK_GROUPS, each webhook on loopback."""
    docs = []
    for doc in yaml.safe_load_all((module / "config/components/webhook/manifests.yaml").read_text()):
        if not doc:
            continue
        kept = [
            hook
            for hook in doc["webhooks"]
            if {group for rule in hook["rules"] for group in rule["apiGroups"]} <= WEBHOOK_GROUPS
        ]
        for hook in kept:
            hook["clientConfig"] = {"url": base_url + hook["clientConfig"]["service"]["path"], "caBundle": ca_bundle}
        doc["metadata"]["name"] = "lmaas-test-kueue-" + doc["metadata"]["name"]
        docs.append({**doc, "webhooks": kept})
    return docs


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Kueue:
    """Kueue's controller manager and webhooks against a running TestCluster. stop() removes the
    webhook configurations first, so that the cluster's Jobs go on without Kueue."""

    def __init__(self, cluster: TestCluster):
        self.cluster = cluster
        self.dir = cluster._need_dir() / "kueue"
        self.proc: _Proc | None = None
        self.webhooks: list[dict[str, Any]] = []

    def __enter__(self) -> Kueue:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> Kueue:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Kueue:
        binary, module = build(), module_dir()
        self.dir.mkdir(exist_ok=True)
        pki = self.cluster.dir / "pki"
        certs = self.dir / "certs"
        certs.mkdir(exist_ok=True)
        # The API server's serving certificate names 127.0.0.1 and is signed by the cluster's CA.
        for name, source in (("tls.crt", "apiserver.crt"), ("tls.key", "apiserver.key")):
            (certs / name).write_bytes((pki / source).read_bytes())
        self._metrics_certs(certs)
        webhook, health = free_ports(2)
        base_url = f"https://127.0.0.1:{webhook}"
        ca_bundle = base64.b64encode(self.cluster.ca_file.read_bytes()).decode()
        config = {
            "apiVersion": "config.kueue.x-k8s.io/v1beta2",
            "kind": "Configuration",
            "namespace": NAMESPACE,
            "health": {"healthProbeBindAddress": f"127.0.0.1:{health}"},
            "metrics": {"bindAddress": "0"},
            "webhook": {"port": webhook, "host": "127.0.0.1", "certDir": str(certs)},
            "leaderElection": {"leaderElect": False},
            "internalCertManagement": {"enable": False},
            "integrations": {"frameworks": FRAMEWORKS},
            # The visibility API server wants certificates of its own at another fixed path.
            "featureGates": {"VisibilityOnDemand": False},
        }
        config_file = self.dir / "config.yaml"
        config_file.write_text(json.dumps(config))
        self._apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}])
        definitions = crds(module)
        self._apply(definitions)
        names = [f"crd/{doc['metadata']['name']}" for doc in definitions]
        self._kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig)}
        argv = [str(binary), f"--config={config_file}"]
        self.proc = _Proc("kueue", argv, self.cluster.log_dir / "kueue.log", env, _die_with_parent)
        self.proc.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._ready(f"http://127.0.0.1:{health}/readyz"):
            self.proc.check()
            if time.monotonic() > deadline:
                raise ClusterError(f"kueue not ready in {START_TIMEOUT:.0f}s; see {self.proc.log_path}")
            time.sleep(0.5)
        self.webhooks = webhook_configurations(module, base_url, ca_bundle)
        self._apply(self.webhooks)
        return self

    def stop(self) -> None:
        for doc in self.webhooks:
            self._kubectl("delete", doc["kind"], doc["metadata"]["name"], "--ignore-not-found")
        self.webhooks = []
        if self.proc is not None:
            self.proc.stop()
            self.proc = None
        for name in ("tls.crt", "tls.key"):
            (METRICS_CERTS / name).unlink(missing_ok=True)

    @staticmethod
    def _metrics_certs(certs: Path) -> None:
        try:
            METRICS_CERTS.mkdir(parents=True, exist_ok=True)
            for name in ("tls.crt", "tls.key"):
                target = METRICS_CERTS / name
                tmp = target.with_suffix(f".tmp{os.getpid()}")
                tmp.write_bytes((certs / name).read_bytes())
                tmp.chmod(0o600)
                os.replace(tmp, target)
        except OSError as error:
            raise ClusterError(
                f"kueue {VERSION} reads a certificate from {METRICS_CERTS} at start, which cannot be written: {error}"
            ) from error

    @staticmethod
    def _ready(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def _apply(self, docs: list[dict[str, Any]]) -> None:
        self._kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml.safe_dump_all(docs))

    def _kubectl(self, *args: str, input: str | None = None) -> None:
        p = subprocess.run(
            ["kubectl", *args], input=input, env=self.cluster.env(), capture_output=True, text=True, timeout=120
        )
        if p.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args[:2])} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
