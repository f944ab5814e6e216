"""lmaas_operator.local.kubelet: a pod template's container run as a local process, as a kubelet would."""

import time

import pytest

from lmaas_operator.local.kubelet import LocalPod
from tests.unit.local.resources import CLAIM_MOUNT, SECRETS, container_state, job_manifest


def pod_of(script, tmp_path):
    template = job_manifest(script)["spec"]["template"]
    return LocalPod(
        "w-0-0",
        template,
        tmp_path / "pods" / "w-0-0",
        tmp_path / "volumes",
        lambda name, key: SECRETS.get(name, {}).get(key),
        index=0,
    )


def run_to_exit(pod, within=10.0):
    pod.start()
    deadline = time.monotonic() + within
    try:
        while pod.poll() is None:
            assert time.monotonic() < deadline, "the pod's process did not exit"
            time.sleep(0.02)
    finally:
        pod.stop()
    return pod.status()


def test_env_paths_under_a_claim_mount_lead_to_the_claim_directory(tmp_path):
    script = (
        "import os, pathlib\nout = pathlib.Path(os.environ['OUT'])\nout.mkdir(parents=True)\n"
        "(out / 'result.txt').write_text(os.environ['GREETING'] + ' ' + os.environ['TOKEN'] + ' ' + os.environ['INDEX'])"
    )
    status = run_to_exit(pod_of(script, tmp_path))
    assert status["status"]["phase"] == "Succeeded"
    assert (tmp_path / "volumes" / "claim" / "runs" / "out" / "result.txt").read_text() == "hello t0ken 0"


def test_the_process_runs_in_its_tmp_emptydir(tmp_path):
    script = "import os, pathlib, tempfile\npathlib.Path('here.txt').write_text(tempfile.gettempdir())"
    run_to_exit(pod_of(script, tmp_path))
    scratch = tmp_path / "pods" / "w-0-0" / "scratch" / "tmp"
    assert (scratch / "here.txt").read_text() == str(scratch)


def test_values_outside_every_mount_are_left_alone(tmp_path):
    pod = pod_of("pass", tmp_path)
    assert pod.local_path(f"{CLAIM_MOUNT}/a/b") == str(tmp_path / "volumes" / "claim" / "a" / "b")
    assert pod.local_path(CLAIM_MOUNT) == str(tmp_path / "volumes" / "claim")
    assert pod.local_path(f"{CLAIM_MOUNT}-other/a") == f"{CLAIM_MOUNT}-other/a"
    assert pod.local_path("pvc://claim/a") == "pvc://claim/a"
    assert pod.environment()["GREETING"] == "hello"


def test_the_runners_own_lmaas_variables_do_not_leak_into_the_pod(tmp_path, monkeypatch):
    monkeypatch.setenv("LMAAS_OUTPUT_DIR", "/somewhere/else")
    monkeypatch.setenv("RANK", "3")
    env = pod_of("pass", tmp_path).environment()
    assert "LMAAS_OUTPUT_DIR" not in env and "RANK" not in env


def test_a_downward_api_volume_holds_the_pods_annotation_as_a_file(tmp_path):
    template = job_manifest("pass")["spec"]["template"]
    template["metadata"]["annotations"] = {"lmaas.io/config": '{"kind": "TrainJob"}'}
    template["spec"]["volumes"].append(
        {
            "name": "config",
            "downwardAPI": {
                "items": [{"path": "config.json", "fieldRef": {"fieldPath": "metadata.annotations['lmaas.io/config']"}}]
            },
        }
    )
    template["spec"]["containers"][0]["volumeMounts"].append(
        {"name": "config", "mountPath": "/etc/lmaas", "readOnly": True}
    )
    pod = LocalPod(
        "w-0-0", template, tmp_path / "pods" / "w-0-0", tmp_path / "volumes", lambda name, key: None, index=0
    )
    with open(pod.local_path("/etc/lmaas/config.json")) as config:
        assert config.read() == '{"kind": "TrainJob"}'


def test_the_termination_log_becomes_the_terminated_message(tmp_path):
    script = (
        "import os, sys\nopen(os.environ['LMAAS_TERMINATION_LOG'], 'w').write('nodes must be 2, not 3')\n"
        "print('noise on stderr', file=sys.stderr)\nsys.exit(78)"
    )
    status = run_to_exit(pod_of(script, tmp_path))
    assert status["status"]["phase"] == "Failed"
    terminated = container_state(status)["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (78, "Error")
    assert terminated["message"] == "nodes must be 2, not 3"
    assert terminated["startedAt"] and terminated["finishedAt"]


def test_without_a_termination_log_a_failure_reports_the_end_of_its_log(tmp_path):
    script = "import sys\nprint('step 1 ok', flush=True)\nsys.stderr.write('RuntimeError: out of luck\\n')\nsys.exit(1)"
    status = run_to_exit(pod_of(script, tmp_path))
    message = container_state(status)["terminated"]["message"]
    assert "RuntimeError: out of luck" in message and "step 1 ok" in message


def test_a_success_has_an_empty_message_and_reason_completed(tmp_path):
    status = run_to_exit(pod_of("print('lots of output')", tmp_path))
    terminated = container_state(status)["terminated"]
    assert (terminated["exitCode"], terminated["reason"], terminated["message"]) == (0, "Completed", "")


def test_stdout_and_stderr_go_to_the_pods_log(tmp_path):
    # One write per line: print() to stderr writes a line in two pieces, which may interleave with stdout.
    pod = pod_of("import sys\nprint('to stdout', flush=True)\nsys.stderr.write('to stderr\\n')", tmp_path)
    run_to_exit(pod)
    assert sorted(pod.tail()) == ["to stderr", "to stdout"]


def test_a_process_killed_by_a_signal_exits_128_plus_the_signal(tmp_path):
    status = run_to_exit(pod_of("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", tmp_path))
    assert container_state(status)["terminated"]["exitCode"] == 137


def test_a_running_pod_reports_running_until_stopped(tmp_path):
    pod = pod_of("import time; time.sleep(60)", tmp_path)
    assert container_state(pod.status())["waiting"]["reason"] == "ContainerCreating"
    pod.start()
    try:
        assert pod.status()["status"]["phase"] == "Running"
        assert pod.running
    finally:
        pod.stop(grace=5)
    assert not pod.running
    assert container_state(pod.status())["terminated"]["exitCode"] == 143


@pytest.mark.parametrize(
    "variable, words",
    [
        (
            {"name": "X", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "nope"}}},
            'secret "creds" has no key "nope"',
        ),
        (
            {"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            "fieldRef status.podIP has no local value",
        ),
        (
            {"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['example.com/zone']"}}},
            "fieldRef metadata.annotations['example.com/zone'] has no local value",
        ),
    ],
)
def test_env_a_kubelet_could_not_resolve_leaves_the_pod_pending_with_the_reason(tmp_path, variable, words):
    pod = pod_of("pass", tmp_path)
    pod.container["env"].append(variable)
    pod.start()
    waiting = container_state(pod.status())["waiting"]
    assert waiting["reason"] == "CreateContainerConfigError"
    assert words in waiting["message"] and "env X" in waiting["message"]
    assert not pod.running


def test_an_optional_secret_that_is_missing_is_empty(tmp_path):
    pod = pod_of("pass", tmp_path)
    pod.container["env"].append(
        {"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}}}
    )
    assert pod.environment()["X"] == ""


def test_a_pod_started_again_runs_again_and_reports_its_new_end(tmp_path):
    # A local ModelService restarts a replica that exited after it had served (restartPolicy Always).
    pod = pod_of(
        "import os, sys; marker = os.path.join(os.environ['TMPDIR'], 'ran'); "
        "again = os.path.exists(marker); open(marker, 'w').close(); sys.exit(0 if again else 3)",
        tmp_path,
    )
    assert container_state(run_to_exit(pod))["terminated"]["exitCode"] == 3
    assert container_state(run_to_exit(pod))["terminated"]["exitCode"] == 0
