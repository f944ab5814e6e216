"""Typed specs of the three kinds, mirroring crds/ field for field.

`tests/unit/operator/test_api_spec.py` fails when a property exists in a CRD but not here (or the
other way round), when requiredness differs, or when a default differs. Parse `body["spec"]` once
with `TrainJobSpec.parse(...)` and work with attributes from then on.

This module imports neither kopf nor torch: the operator, the worker and `lmaas run` share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are an error, as in the CRD."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, protected_namespaces=()
    )

    @classmethod
    def parse(cls, data: dict[str, Any] | None) -> Self:
        return cls.model_validate(data or {})

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


# --- shared pieces -------------------------------------------------------------------------


class KeyRef(ApiModel):
    name: str
    key: str
    optional: bool | None = None


class EnvSource(ApiModel):
    secret_key_ref: KeyRef | None = None
    config_map_key_ref: KeyRef | None = None


class EnvVar(ApiModel):
    name: str
    value: str | None = None
    value_from: EnvSource | None = None


class Resources(ApiModel):
    requests: dict[str, int | str] | None = None
    limits: dict[str, int | str] | None = None


class Toleration(ApiModel):
    key: str | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


class PodOptions(ApiModel):
    """What passes through to the pods: placement, identity and metadata."""

    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    node_selector: dict[str, str] | None = None
    tolerations: list[Toleration] | None = None
    affinity: dict[str, Any] | None = None
    priority_class_name: str | None = None
    scheduler_name: str | None = None
    service_account_name: str | None = None


class Output(ApiModel):
    uri: str | None = None


class ModelDefinition(ApiModel):
    """A network to build: a builtin or a user factory, with keyword arguments."""

    builtin: Literal["mlp", "cnn", "char-gpt"] | None = None
    factory: str | None = None
    args: dict[str, Any] | None = None


class DatasetDefinition(ApiModel):
    builtin: Literal["digits", "shakespeare"] | None = None
    factory: str | None = None
    args: dict[str, Any] | None = None
    validation_fraction: float = 0.2


class ModelReference(ApiModel):
    """Where a consumer's model comes from: exactly one of the three."""

    from_train_job: str | None = None
    from_compress_job: str | None = None
    uri: str | None = None

    @property
    def producer(self) -> tuple[str, str] | None:
        """(kind, name) of the producing resource, or None for a plain uri."""
        if self.from_train_job:
            return ("TrainJob", self.from_train_job)
        if self.from_compress_job:
            return ("CompressJob", self.from_compress_job)
        return None


@dataclass(frozen=True)
class ArtifactCodePolicy:
    """Which user code an artifact's model card may have a worker import (builtin models always load).

    A card's `model.factory` is imported only when it is one of `factories`, those that the loading
    resource's own spec names (code its owner chose to run anyway), or when `trust_all`: the spec's
    `trustArtifactCode: true`, with which whoever wrote the artifact runs code as the worker.
    """

    factories: frozenset[str] = frozenset()
    trust_all: bool = False

    def allows(self, factory: str) -> bool:
        return self.trust_all or factory in self.factories


# --- TrainJob ------------------------------------------------------------------------------


class HuggingFaceConfig(ApiModel):
    """A transformers model config as `config.json` holds it: snake_case keys, any that transformers
    knows for the `model_type` (they are kept as given, beyond those named here: the vocabulary size
    and special token ids, which the CRD refuses because the trained tokenizer sets them)."""

    model_config = ConfigDict(extra="allow")

    model_type: str = Field(alias="model_type")
    vocab_size: int | None = Field(default=None, alias="vocab_size")
    bos_token_id: int | None = Field(default=None, alias="bos_token_id")
    eos_token_id: int | None = Field(default=None, alias="eos_token_id")
    pad_token_id: int | None = Field(default=None, alias="pad_token_id")


class HuggingFaceModel(ApiModel):
    """A transformers causal language model: from a config (randomly initialised) or a model folder."""

    config: HuggingFaceConfig | None = None
    uri: str | None = None
    dtype: Literal["float32", "bfloat16"] = "float32"
    attn_implementation: Literal["sdpa", "eager", "flex_attention", "flash_attention_2"] = "sdpa"
    gradient_checkpointing: bool = False


class TrainJobModel(ModelDefinition):
    """What a TrainJob trains: a builtin, a factory, or a Hugging Face causal language model."""

    hf: HuggingFaceModel | None = None

    @property
    def label(self) -> str:
        """How progress lines and logs name the model."""
        if self.hf is not None:
            return f"hf {self.hf.config.model_type}" if self.hf.config else f"hf {self.hf.uri}"
        return self.builtin or self.factory or ""


class TrainJobDataset(DatasetDefinition):
    """A TrainJob's data: a builtin, a factory, or (for a Hugging Face model) a file at `uri`."""

    builtin: Literal["digits", "shakespeare", "shakespeare-chat"] | None = None  # type: ignore[assignment]
    uri: str | None = None
    format: Literal["text", "jsonl", "parquet", "chat"] | None = None
    """How the file at `uri` holds its text (a builtin's format is its own)."""
    text_field: str | None = None
    """The field holding each record's text, for jsonl and parquet (see `data.sources`)."""
    sequence_length: int | None = None
    """Tokens per training block of a Hugging Face model's text."""

    @property
    def label(self) -> str:
        """How progress lines and logs name the data."""
        return self.builtin or self.factory or self.uri or ""


class TokenizerTraining(ApiModel):
    vocab_size: int


class TokenizerSpec(ApiModel):
    """The tokenizer of a model from a config: trained on the training split."""

    train: TokenizerTraining


class LoraSpec(ApiModel):
    """LoRA adapters (peft): rank-r matrices beside each targeted layer, trained while the model is frozen."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0
    target_modules: list[str] | None = None
    """Names of the layers to adapt; None: peft's choice for the model family."""


class PeftSpec(ApiModel):
    """Parameter-efficient fine-tuning of a Hugging Face model: only the adapters train and are written."""

    lora: LoraSpec
    merge_adapter: bool = False


class Hyperparameters(ApiModel):
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 32
    learning_rate: float = 0.001
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    weight_decay: float = 0
    momentum: float | None = None
    lr_schedule: Literal["constant", "cosine", "linear"] = "constant"
    warmup_steps: int = 0
    gradient_accumulation_steps: int = 1
    max_grad_norm: float | None = None
    seed: int = 0
    mixed_precision: Literal["auto", "bf16", "fp32"] = "auto"
    log_every_steps: int = 10
    eval_every_steps: int | None = None


class CheckpointPolicy(ApiModel):
    every_steps: int = 100
    keep: int = 2
    resume: bool = True


class TrainJobSpec(ApiModel):
    model: TrainJobModel | None = None
    tokenizer: TokenizerSpec | None = None
    peft: PeftSpec | None = None
    dataset: TrainJobDataset | None = None
    command: list[str] | None = None
    image: str | None = None
    env: list[EnvVar] | None = None
    strategy: Literal["ddp", "fsdp"] = "ddp"
    nodes: int | None = None
    min_nodes: int | None = None
    max_nodes: int | None = None
    procs_per_node: int = 1
    resources: Resources | None = None
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    checkpoint: CheckpointPolicy = Field(default_factory=CheckpointPolicy)
    output: Output | None = None
    max_restarts: int = 3
    active_deadline_seconds: int | None = None
    ttl_seconds_after_finished: int | None = None
    suspend: bool = False
    pod: PodOptions | None = None

    @property
    def elastic(self) -> bool:
        return self.min_nodes is not None

    @property
    def node_range(self) -> tuple[int, int]:
        """(fewest, most) nodes; equal unless the job is elastic."""
        if self.min_nodes is not None and self.max_nodes is not None:
            return (self.min_nodes, self.max_nodes)
        return (self.nodes or 1, self.nodes or 1)


# --- CompressJob ---------------------------------------------------------------------------


class PruneStep(ApiModel):
    sparsity: float
    scope: Literal["global", "layer"] = "global"
    structure: Literal["unstructured", "structured"] = "unstructured"
    iterations: int = 1
    fine_tune_epochs: int = 1
    learning_rate: float = 0.0005


class DistillStep(ApiModel):
    student: ModelDefinition
    temperature: float = 4
    alpha: float = 0.5
    epochs: int = 10
    learning_rate: float = 0.05
    batch_size: int = 64


class QuantizeStep(ApiModel):
    scheme: Literal["int8", "int4"] = "int8"
    group_size: Literal[32, 64, 128, 256] | None = None


class CompressionStep(ApiModel):
    prune: PruneStep | None = None
    distill: DistillStep | None = None
    quantize: QuantizeStep | None = None

    @property
    def kind(self) -> str:
        """prune, distill or quantize: the one that is set."""
        return next(k for k in ("prune", "distill", "quantize") if getattr(self, k) is not None)


class CompressJobSpec(ApiModel):
    model: ModelReference
    trust_artifact_code: bool = False
    dataset: DatasetDefinition | None = None
    steps: list[CompressionStep]
    max_accuracy_drop: float = 1
    max_perplexity_increase: float = 0.1
    seed: int = 0
    image: str | None = None
    env: list[EnvVar] | None = None
    resources: Resources | None = None
    output: Output | None = None
    max_restarts: int = 2
    active_deadline_seconds: int | None = None
    ttl_seconds_after_finished: int | None = None
    pod: PodOptions | None = None

    @property
    def artifact_code(self) -> ArtifactCodePolicy:
        """What the input's and the steps' model cards may name: the distill students' factories."""
        students = frozenset(
            step.distill.student.factory
            for step in self.steps
            if step.distill is not None and step.distill.student.factory
        )
        return ArtifactCodePolicy(students, self.trust_artifact_code)


# --- ModelService --------------------------------------------------------------------------


class Autoscaling(ApiModel):
    min_replicas: int = 1
    max_replicas: int
    target_cpu_utilization_percentage: int = Field(default=70, alias="targetCPUUtilizationPercentage")


class Batching(ApiModel):
    max_batch_size: int = 32
    max_latency_ms: float = 5


class SecretKeySelector(ApiModel):
    name: str
    key: str = "token"


class Auth(ApiModel):
    token_secret_ref: SecretKeySelector


class ModelServiceSpec(ApiModel):
    model: ModelReference
    trust_artifact_code: bool = False
    replicas: int = 1
    autoscaling: Autoscaling | None = None
    batching: Batching = Field(default_factory=Batching)
    threads: int | None = None
    auth: Auth | None = None
    port: int = 8080
    image: str | None = None
    env: list[EnvVar] | None = None
    resources: Resources | None = None
    pod: PodOptions | None = None

    @property
    def artifact_code(self) -> ArtifactCodePolicy:
        """What the served model card may name: a ModelService names no factory of its own."""
        return ArtifactCodePolicy(trust_all=self.trust_artifact_code)


SPEC_TYPES: dict[str, type[ApiModel]] = {
    "TrainJob": TrainJobSpec,
    "CompressJob": CompressJobSpec,
    "ModelService": ModelServiceSpec,
}
