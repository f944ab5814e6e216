"""lmaas_operator.trainjob.builders: a TrainJob's children, tested as data."""

import pytest

from lmaas_api import contract
from lmaas_operator.config import OperatorConfig
from lmaas_operator.trainjob.builders import render_children, render_job
from tests.unit.corpus import sample_documents
from tests.unit.operator.builders import assert_valid_kubernetes, projected_config, stored

CONFIG = OperatorConfig(worker_image="registry.example/lmaas/worker:1", artifact_claim="artifacts", peering_priority=1)
TRAIN = {
    "apiVersion": "lmaas.io/v1alpha1",
    "kind": "TrainJob",
    "metadata": {"name": "digits"},
    "spec": {"model": {"builtin": "mlp"}, "dataset": {"builtin": "digits"}, "nodes": 2},
}
TRAIN_SAMPLES = [d for _, d in sample_documents() if d["kind"] == "TrainJob"]


def with_spec(**spec):
    return {**TRAIN, "spec": {**TRAIN["spec"], **spec}}


def container_of(job):
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return container


def env_of(job):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container_of(job)["env"]}


@pytest.mark.parametrize("doc", TRAIN_SAMPLES, ids=lambda d: d["metadata"]["name"])
def test_children_of_every_sample_are_valid_kubernetes_objects(doc):
    children = render_children(stored(doc), CONFIG)
    assert [c["kind"] for c in children] == ["Service", "Job"]
    assert_valid_kubernetes(*children)


def test_children_have_deterministic_names_and_are_owned_by_the_trainjob():
    cr = stored(TRAIN, uid="uid-1")
    first, second = render_children(cr, CONFIG), render_children(cr, CONFIG)
    assert first == second
    assert [c["metadata"]["name"] for c in first] == ["digits", "digits"]
    for child in first:
        (owner,) = child["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
            "TrainJob",
            "digits",
            "uid-1",
            True,
        )
        assert child["metadata"]["namespace"] == "ml"


def test_the_job_is_indexed_one_pod_per_node_with_rank_0_reachable_through_the_headless_service():
    service, job = render_children(stored(with_spec(nodes=3)), CONFIG)
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 3
    assert job["spec"]["template"]["spec"]["subdomain"] == service["metadata"]["name"] == "digits"
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    assert all(pod_labels[k] == v for k, v in service["spec"]["selector"].items())
    assert env_of(job)["PET_RDZV_ENDPOINT"] == f"digits-0.digits:{contract.RDZV_PORT}"


def test_torchrun_contract_is_set_by_the_operator():
    env = env_of(render_job(stored(with_spec(procsPerNode=4, maxRestarts=5), uid="run-42"), CONFIG))
    assert env["PET_NNODES"] == "2"
    assert env["PET_NPROC_PER_NODE"] == "4"
    assert env["PET_NODE_RANK"] == {
        "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
    }
    assert env["PET_RDZV_BACKEND"] == "c10d"
    assert env["PET_RDZV_ID"] == "run-42"
    assert env["PET_MAX_RESTARTS"] == "5"


def test_elastic_jobs_run_min_to_max_nodes():
    doc = with_spec(minNodes=2, maxNodes=4)
    del doc["spec"]["nodes"]
    job = render_job(stored(doc), CONFIG)
    assert env_of(job)["PET_NNODES"] == "2:4"
    assert job["spec"]["parallelism"] == 4


def test_the_worker_reads_the_whole_trainjob_from_its_pod_template():
    job = render_job(stored(with_spec(strategy="fsdp", pod={"annotations": {"team": "vision"}}), uid="u"), CONFIG)
    document = projected_config(job["spec"]["template"])
    assert document["metadata"] == {"name": "digits", "namespace": "ml", "uid": "u"}
    assert document["spec"]["strategy"] == "fsdp"
    assert document["spec"]["hyperparameters"]["batchSize"] == 32
    assert job["spec"]["template"]["metadata"]["annotations"]["team"] == "vision"
    assert "pod" not in document["spec"]  # the pod's own; the worker does not read it


def test_what_may_change_while_the_job_runs_leaves_its_pod_template_as_it_was():
    # The API server refuses any change of a Job's pod template.
    before = render_job(stored(TRAIN, uid="u"), CONFIG)
    edited = stored(
        with_spec(suspend=True, activeDeadlineSeconds=600, ttlSecondsAfterFinished=60), uid="u", generation=4
    )
    after = render_job(edited, CONFIG)
    assert after["spec"]["template"] == before["spec"]["template"]
    assert (after["spec"]["suspend"], after["spec"]["activeDeadlineSeconds"]) == (True, 600)
    assert "suspend" not in projected_config(after["spec"]["template"])["spec"]


def test_gloo_on_cpu_and_nccl_when_gpus_are_requested():
    assert env_of(render_job(stored(TRAIN), CONFIG))[contract.BACKEND_ENV] == "gloo"
    gpu = with_spec(resources={"limits": {"nvidia.com/gpu": 8, "memory": "64Gi"}})
    job = render_job(stored(gpu), CONFIG)
    assert env_of(job)[contract.BACKEND_ENV] == "nccl"
    assert container_of(job)["resources"]["limits"]["nvidia.com/gpu"] == 8


def test_output_goes_to_the_named_claim_or_the_operators_default():
    job = render_job(stored(with_spec(output={"uri": "pvc://team-vol/runs/digits"})), CONFIG)
    assert env_of(job)[contract.OUTPUT_DIR_ENV] == "/var/lib/lmaas/volumes/team-vol/runs/digits"
    assert env_of(job)[contract.OUTPUT_URI_ENV] == "pvc://team-vol/runs/digits"
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in job["spec"]["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert claims == ["team-vol"]
    default = render_job(stored(TRAIN), CONFIG)
    assert env_of(default)[contract.OUTPUT_URI_ENV] == "pvc://artifacts/trainjobs/ml/digits"


def test_a_hugging_face_model_folder_is_mounted_read_only_and_named_to_the_worker():
    def rendered(uri):
        return render_job(
            stored(with_spec(model={"hf": {"uri": uri}}, dataset={"builtin": "shakespeare", "sequenceLength": 64})),
            CONFIG,
        )

    job = rendered("pvc://models/llama/base")
    assert env_of(job)[contract.INPUT_DIR_ENV] == "/var/lib/lmaas/volumes/models/llama/base"
    pod = job["spec"]["template"]["spec"]
    claims = {
        v["persistentVolumeClaim"]["claimName"]: v["persistentVolumeClaim"].get("readOnly", False)
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {"artifacts": False, "models": True}
    mounts = {m["mountPath"]: m.get("readOnly", False) for m in container_of(job)["volumeMounts"]}
    assert mounts["/var/lib/lmaas/volumes/models"] is True and mounts["/var/lib/lmaas/volumes/artifacts"] is False
    assert_valid_kubernetes(job)
    # a folder on the output's claim is under its (writable) mount already
    same = rendered("pvc://artifacts/models/llama")
    assert env_of(same)[contract.INPUT_DIR_ENV] == "/var/lib/lmaas/volumes/artifacts/models/llama"
    assert [
        v["persistentVolumeClaim"]["claimName"]
        for v in same["spec"]["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    ] == ["artifacts"]
    assert contract.INPUT_DIR_ENV not in env_of(render_job(stored(TRAIN), CONFIG))


def test_image_defaults_to_the_operator_config_and_a_custom_command_replaces_the_trainer():
    assert container_of(render_job(stored(TRAIN), CONFIG))["image"] == "registry.example/lmaas/worker:1"
    assert container_of(render_job(stored(TRAIN), CONFIG))["command"] == ["lmaas", "train", "--launch"]
    custom = {**TRAIN, "spec": {"command": ["torchrun", "/app/train.py"], "image": "me/mine:2", "nodes": 2}}
    container = container_of(render_job(stored(custom), CONFIG))
    assert container["command"] == ["torchrun", "/app/train.py"]
    assert container["image"] == "me/mine:2"
    assert "PET_NNODES" in {e["name"] for e in container["env"]}  # same contract


def test_user_env_passes_through_after_the_contract():
    job = render_job(
        stored(
            with_spec(
                env=[
                    {"name": "WANDB_MODE", "value": "offline"},
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                ]
            )
        ),
        CONFIG,
    )
    names = [e["name"] for e in container_of(job)["env"]]
    assert names[-2:] == ["WANDB_MODE", "TOKEN"]
    assert env_of(job)["TOKEN"] == {"secretKeyRef": {"name": "s", "key": "k"}}


def test_placement_labels_and_kueue_queue_pass_through_and_suspend_maps_to_the_job():
    pod = {
        "labels": {"kueue.x-k8s.io/queue-name": "team-a"},
        "annotations": {"note": "x"},
        "nodeSelector": {"pool": "gpu"},
        "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {}},
        "priorityClassName": "high",
        "schedulerName": "volcano",
        "serviceAccountName": "trainer",
    }
    job = render_job(stored(with_spec(pod=pod, suspend=True)), CONFIG)
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"  # Kueue reads the Job
    assert job["spec"]["template"]["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert job["spec"]["suspend"] is True
    pod_spec = job["spec"]["template"]["spec"]
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName", "schedulerName", "serviceAccountName"):
        assert pod_spec[key] == pod[key]


def test_pods_are_restricted_and_carry_no_api_token():
    pod_spec = render_job(stored(TRAIN), CONFIG)["spec"]["template"]["spec"]
    assert pod_spec["automountServiceAccountToken"] is False
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    assert pod_spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = pod_spec["containers"][0]["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]


def test_restart_budget_and_deadline_map_to_the_job_and_ttl_is_the_operators():
    job = render_job(stored(with_spec(maxRestarts=2, activeDeadlineSeconds=600, ttlSecondsAfterFinished=60)), CONFIG)
    assert job["spec"]["backoffLimit"] == 2
    assert job["spec"]["activeDeadlineSeconds"] == 600
    # The Job controller would delete the Job before the operator read its result.
    assert "ttlSecondsAfterFinished" not in job["spec"]
    rules = job["spec"]["podFailurePolicy"]["rules"]
    assert rules[0] == {
        "action": "FailJob",
        "onExitCodes": {"containerName": "trainer", "operator": "In", "values": [contract.EXIT_CONFIG_ERROR]},
    }
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"  # required by podFailurePolicy
