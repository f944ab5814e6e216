"""lmaas_api.spec: the typed specs stay in step with the CRD schemas."""

import typing

import pydantic
import pytest

from lmaas_api.crds import load_crds
from lmaas_api.spec import SPEC_TYPES, ApiModel, CompressJobSpec, ModelServiceSpec, TrainJobSpec
from lmaas_api.validation import validate
from tests.unit.corpus import sample_documents


def _nested_model(annotation):
    """The ApiModel inside X | None, list[X] or dict[str, X], if any."""
    if isinstance(annotation, type) and issubclass(annotation, ApiModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _nested_model(arg)
        if found:
            return found
    return None


def _drift(model: type[ApiModel], schema: dict, path: str) -> list[str]:
    """Every difference between a model and the schema it mirrors."""
    if schema.get("type") == "array":
        schema = schema["items"]
    problems = []
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    properties = schema.get("properties", {})
    for key in sorted(set(properties) - set(fields)):
        problems.append(f"{path}.{key} is in the CRD but not in {model.__name__}")
    for key in sorted(set(fields) - set(properties)):
        problems.append(f"{path}.{key} is in {model.__name__} but not in the CRD")
    required = set(schema.get("required", []))
    for key in sorted(set(fields) & set(properties)):
        field, prop = fields[key], properties[key]
        if (key in required) != field.is_required():
            problems.append(
                f"{path}.{key}: required in the CRD={key in required}, in {model.__name__}={field.is_required()}"
            )
        if "default" in prop and prop["default"] != {}:
            if field.is_required() or field.get_default(call_default_factory=True) != prop["default"]:
                problems.append(f"{path}.{key}: CRD default {prop['default']!r} differs from {model.__name__}'s")
        nested = _nested_model(field.annotation)
        has_properties = "properties" in prop or "properties" in prop.get("items", {})
        if nested and has_properties:
            problems += _drift(nested, prop, f"{path}.{key}")
        elif nested or has_properties:
            problems.append(f"{path}.{key}: an object in one and not in the other")
    return problems


@pytest.mark.parametrize("kind", sorted(SPEC_TYPES))
def test_typed_spec_mirrors_the_crd(kind):
    schema = load_crds()[kind].schema["properties"]["spec"]
    assert _drift(SPEC_TYPES[kind], schema, "spec") == []


def test_the_drift_check_notices_a_missing_property():
    class Shrunk(ApiModel):
        model: dict | None = None

    schema = load_crds()["ModelService"].schema["properties"]["spec"]
    problems = _drift(Shrunk, schema, "spec")
    assert "spec.replicas is in the CRD but not in Shrunk" in problems
    assert any(p.startswith("spec.model: required in the CRD=True") for p in problems)


@pytest.mark.parametrize(
    "name,doc", sample_documents(), ids=lambda v: v if isinstance(v, str) else v["metadata"]["name"]
)
def test_every_sample_parses_into_its_typed_spec(name, doc):
    spec = SPEC_TYPES[doc["kind"]].parse(validate(doc)["spec"])
    assert spec.to_dict()  # round-trips to the wire form


def test_typed_specs_read_like_the_api():
    train = TrainJobSpec.parse({"minNodes": 2, "maxNodes": 4, "model": {"builtin": "mlp"}})
    assert train.elastic and train.node_range == (2, 4)
    assert TrainJobSpec.parse({}).node_range == (1, 1)
    compress = CompressJobSpec.parse(
        {"model": {"fromTrainJob": "t"}, "steps": [{"quantize": {}}, {"prune": {"sparsity": 0.5}}]}
    )
    assert [s.kind for s in compress.steps] == ["quantize", "prune"]
    assert compress.model.producer == ("TrainJob", "t")
    serve = ModelServiceSpec.parse({"model": {"uri": "pvc://a/b"}, "autoscaling": {"maxReplicas": 3}})
    assert serve.model.producer is None
    assert serve.autoscaling.target_cpu_utilization_percentage == 70
    assert serve.to_dict()["autoscaling"]["targetCPUUtilizationPercentage"] == 70


def test_unknown_fields_are_refused_by_the_types_too():
    with pytest.raises(pydantic.ValidationError, match="gpus"):
        TrainJobSpec.parse({"gpus": 2})


def test_a_hugging_face_config_keeps_every_key_as_config_json_spells_it():
    config = {"model_type": "llama", "hidden_size": 64, "rope_theta": 10000.0, "tie_word_embeddings": True}
    spec = TrainJobSpec.parse(
        {
            "model": {"hf": {"config": config}},
            "tokenizer": {"train": {"vocabSize": 1024}},
            "dataset": {"builtin": "shakespeare", "sequenceLength": 64},
        }
    )
    assert spec.model.hf.config.model_type == "llama" and spec.model.label == "hf llama"
    assert spec.to_dict()["model"]["hf"] == {
        "config": config,
        "dtype": "float32",
        "attnImplementation": "sdpa",
        "gradientCheckpointing": False,
    }
    assert spec.dataset.sequence_length == 64 and spec.tokenizer.train.vocab_size == 1024
