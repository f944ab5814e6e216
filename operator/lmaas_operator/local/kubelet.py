"""A pod of a rendered manifest, run as a local process: what a kubelet does, on this machine.

The container's command runs with its env resolved the way a kubelet resolves it (fieldRefs,
secretKeyRefs) and its volumes mapped onto local directories: a PersistentVolumeClaim is
STORE/volumes/CLAIM, a downward API volume a directory holding its files (the pod's own fields,
such as the annotation holding a worker's config), an emptyDir a scratch directory of the pod.
Mount paths in env values are rewritten to those directories, which is all the workers need
(they learn every path from their env). The pod's state comes back as the `status` a kubelet
would write, so the operator's own status functions read it unchanged.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lmaas_api.clock import utc_now

COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
TERMINATION_LOG_ENV = "LMAAS_TERMINATION_LOG"  # where the worker writes /dev/termination-log's content
TERMINATION_MESSAGE_LIMIT = 4096
STOP_GRACE_SECONDS = 10.0

SecretLookup = Callable[[str, str], str | None]
"""(secret name, key) → value, or None when there is no such secret or key."""


class PodConfigError(ValueError):
    """A pod that a kubelet could not start (CreateContainerConfigError): a missing secret, say."""


class LocalPod:
    def __init__(
        self,
        name: str,
        template: dict[str, Any],
        pod_dir: Path,
        volumes_root: Path,
        secrets: SecretLookup,
        index: int | None = None,
        env_overrides: dict[str, str] | None = None,
        extra_args: list[str] | None = None,
        on_line: Callable[[str], None] | None = None,
    ):
        self.name = name
        self.index = index
        spec = template["spec"]
        (self.container,) = spec["containers"]
        self.annotations = {**((template.get("metadata") or {}).get("annotations") or {})}
        if index is not None:
            self.annotations[COMPLETION_INDEX_ANNOTATION] = str(index)
        self.dir = pod_dir
        self.log_path = pod_dir / "log.txt"
        self.termination_log = pod_dir / "termination-log"
        self._mounts = self._mount_volumes(spec.get("volumes") or [], volumes_root)
        self._secrets = secrets
        self._overrides = env_overrides or {}
        self._extra_args = extra_args or []
        self._on_line = on_line
        self._process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self.started_at: str | None = None
        self.finished_at: str | None = None
        self.exit_code: int | None = None
        self.config_error: str | None = None
        self.termination_message = ""

    # --- volumes and env ---------------------------------------------------------------

    def _mount_volumes(self, volumes: list[dict[str, Any]], volumes_root: Path) -> list[tuple[str, Path]]:
        """(mount path, local directory) for each of the container's mounts, longest path first."""
        local: dict[str, Path] = {}
        for volume in volumes:
            name = volume["name"]
            if "persistentVolumeClaim" in volume:
                local[name] = volumes_root / volume["persistentVolumeClaim"]["claimName"]
            elif "downwardAPI" in volume:
                directory = self.dir / "downward" / name
                directory.mkdir(parents=True, exist_ok=True)
                for item in volume["downwardAPI"]["items"]:
                    (directory / item["path"]).write_text(self._field(item["fieldRef"]["fieldPath"], f"volume {name}"))
                local[name] = directory
            else:  # emptyDir and anything a local process can treat as scratch space
                local[name] = self.dir / "scratch" / name
        mounts = []
        for mount in self.container.get("volumeMounts") or []:
            directory = local[mount["name"]]
            directory.mkdir(parents=True, exist_ok=True)
            mounts.append((mount["mountPath"].rstrip("/"), directory))
        return sorted(mounts, key=lambda m: len(m[0]), reverse=True)

    def local_path(self, value: str) -> str:
        """A path inside the pod → the same file here (values outside every mount are left alone)."""
        for mount_path, directory in self._mounts:
            if value == mount_path or value.startswith(mount_path + "/"):
                return str(directory) + value[len(mount_path) :]
        return value

    def environment(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PET_", "TORCHELASTIC_", "LMAAS_")) and k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")
        }
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env.setdefault("OMP_NUM_THREADS", "1")
        for variable in self.container.get("env") or []:
            env[variable["name"]] = self._resolve(variable)
        env.update(self._overrides)
        env[TERMINATION_LOG_ENV] = str(self.termination_log)
        env["TMPDIR"] = self.local_path("/tmp")
        return env

    def _resolve(self, variable: dict[str, Any]) -> str:
        if "value" in variable:
            return self.local_path(str(variable["value"]))
        source = variable.get("valueFrom") or {}
        if "fieldRef" in source:
            return self._field(source["fieldRef"]["fieldPath"], f"env {variable['name']}")
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            value = self._secrets(ref["name"], ref["key"])
            if value is None:
                if ref.get("optional"):
                    return ""
                raise PodConfigError(f'env {variable["name"]}: secret "{ref["name"]}" has no key "{ref["key"]}"')
            return value
        raise PodConfigError(f"env {variable['name']}: {sorted(source)} has no local value")

    def _field(self, field_path: str, what: str) -> str:
        """A fieldRef's value: the pod's name or one of its annotations (the completion index is one)."""
        if field_path == "metadata.name":
            return self.name
        annotation = re.fullmatch(r"metadata\.annotations\['([^']+)'\]", field_path)
        if annotation and annotation.group(1) in self.annotations:
            return self.annotations[annotation.group(1)]
        raise PodConfigError(f"{what}: fieldRef {field_path} has no local value")

    # --- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the container; a pod started again (a restarted replica) begins a new run."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.termination_log.unlink(missing_ok=True)
        self.started_at = utc_now()
        self.exit_code = self.finished_at = self.config_error = None
        self.termination_message = ""
        try:
            env = self.environment()
        except PodConfigError as error:
            self.config_error = str(error)
            return
        command = [*self.container["command"], *(self.container.get("args") or []), *self._extra_args]
        log = self.log_path.open("a")
        self._process = subprocess.Popen(
            command,
            env=env,
            cwd=self.local_path("/tmp"),
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,  # Ctrl-C reaches the runner, which stops the pod's whole group
        )
        log.close()
        self._reader = threading.Thread(target=self._read, args=(self._process.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream) -> None:
        with self.log_path.open("a") as log:
            for line in stream:
                log.write(line)
                log.flush()
                if self._on_line:
                    self._on_line(line)

    @property
    def running(self) -> bool:
        return self._process is not None and self.poll() is None

    def poll(self) -> int | None:
        if self._process is None or self.exit_code is not None:
            return self.exit_code
        code = self._process.poll()
        if code is not None:
            if self._reader:
                self._reader.join(timeout=5)
            self.exit_code = code if code >= 0 else 128 - code  # killed by a signal: 128+N, as in a pod
            self.finished_at = utc_now()
            self.termination_message = self._termination_message()  # read once, as a kubelet does
        return self.exit_code

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM to the pod's process group, SIGKILL after the grace period: a pod deletion."""
        if self._process is None or self._process.poll() is not None:
            self.poll()
            return
        _signal_group(self._process, signal.SIGTERM)
        try:
            self._process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(self._process, signal.SIGKILL)
            self._process.wait()
        self.poll()

    def tail(self, lines: int = 20) -> list[str]:
        if not self.log_path.exists():
            return []
        return self.log_path.read_text(errors="replace").splitlines()[-lines:]

    # --- what a kubelet reports ------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        container: dict[str, Any] = {"name": self.container["name"], "ready": False}
        if self.config_error:
            phase = "Pending"
            container["state"] = {"waiting": {"reason": "CreateContainerConfigError", "message": self.config_error}}
        elif self._process is None:
            phase = "Pending"
            container["state"] = {"waiting": {"reason": "ContainerCreating"}}
        elif self.poll() is None:
            phase = "Running"
            container["state"] = {"running": {"startedAt": self.started_at}}
        else:
            phase = "Succeeded" if self.exit_code == 0 else "Failed"
            container["state"] = {
                "terminated": {
                    "exitCode": self.exit_code,
                    "reason": "Completed" if self.exit_code == 0 else "Error",
                    "message": self.termination_message,
                    "startedAt": self.started_at,
                    "finishedAt": self.finished_at,
                }
            }
        return {
            "metadata": {"name": self.name, "annotations": dict(self.annotations)},
            "status": {"phase": phase, "containerStatuses": [container]},
        }

    def _termination_message(self) -> str:
        """The termination log, else the log's tail (terminationMessagePolicy FallbackToLogsOnError)."""
        written = self.termination_log.read_text() if self.termination_log.exists() else ""
        if written.strip():
            return written[-TERMINATION_MESSAGE_LIMIT:]
        if self.exit_code:
            return "\n".join(self.tail(80))[-TERMINATION_MESSAGE_LIMIT:]
        return ""


def ignore_further_interrupts() -> None:
    """After the first Ctrl-C (or SIGTERM) the runner stops its pods; a second must not cut that short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
