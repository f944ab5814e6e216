"""lmaas_worker.artifacts.compressed: the compressed safetensors format round-trips, and shrinks."""

import re

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from lmaas_api.card import LayerSize, ModelCard, Quantization
from lmaas_api.errors import ConfigError
from lmaas_api.spec import ArtifactCodePolicy, ModelDefinition
from lmaas_worker import artifacts
from lmaas_worker.artifacts.compressed import decode, decode_weight, encode, encode_weight, pack_bits, unpack_bits
from lmaas_worker.artifacts.int8_backend import Int8Linear
from lmaas_worker.artifacts.layers import weight_names
from lmaas_worker.compress.prune import prune_structured, prune_unstructured
from lmaas_worker.compress.state import WorkingModel, working_model
from lmaas_worker.models import mlp
from tests import artifact_code

INT8 = Quantization(scheme="int8")


def _encode(model: WorkingModel):
    model.apply_masks()
    return encode(model.module.state_dict(), weight_names(model.module), model.quantization, model.sizes)


def _mlp(hidden, factory=None, **args):
    """The definition of a digits-shaped mlp (builtin, or the same arguments for `factory`)."""
    args = {"in_features": 64, "num_classes": 10, "hidden": hidden, **args}
    return ModelDefinition(factory=factory, args=args) if factory else ModelDefinition(builtin="mlp", args=args)


def test_bitmasks_pack_eight_weights_per_byte_and_unpack_exactly():
    mask = torch.rand(1001) > 0.4
    packed = pack_bits(mask)
    assert packed.dtype == torch.uint8 and packed.numel() == 126
    assert torch.equal(unpack_bits(packed, 1001), mask)
    assert pack_bits(torch.tensor([True, False, False, True])).tolist() == [0b1001]


@pytest.mark.parametrize("quantization", [None, INT8, Quantization(scheme="int4", group_size=32)])
def test_a_sparse_weight_round_trips_exactly_through_its_encoding(quantization):
    weight = torch.randn(24, 70)
    weight[torch.rand(24, 70) < 0.6] = 0
    entry, stored = encode_weight(weight, quantization)
    assert entry.layout == "bitmask" and entry.shape == [24, 70]
    decoded = decode_weight(entry, stored)
    assert bool((decoded[weight == 0] == 0).all())  # pruned weights stay exactly zero, quantized or not
    if quantization is None:
        assert torch.equal(decoded, weight)
        assert stored["values"].numel() == int(torch.count_nonzero(weight))
    else:
        again = decode_weight(*encode_weight(decoded, quantization))
        assert torch.equal(again, decoded)  # quantized values are a fixed point of store-and-load


def test_a_dense_float_weight_is_stored_plainly():
    assert encode_weight(torch.randn(4, 4), None) is None


def _saved_size(tmp_path, name, tensors):
    path = tmp_path / f"{name}.safetensors"
    save_file(tensors, path)
    return path.stat().st_size


def test_unstructured_storage_shrinks_with_sparsity(tmp_path):
    torch.manual_seed(0)
    sizes = {}
    for sparsity in (0.0, 0.3, 0.5, 0.8, 0.95):
        model = WorkingModel(mlp.build(64, 10, hidden=[256, 128]), _mlp([256, 128]))
        if sparsity:
            prune_unstructured(model, sparsity, "global")
        tensors, _ = _encode(model)
        sizes[sparsity] = _saved_size(tmp_path, str(sparsity), tensors)
    assert sizes[0.3] < sizes[0.0]  # already smaller: 4 bytes x 0.7 + 1/8 < 4
    assert sizes[0.5] < 0.56 * sizes[0.0]
    assert sizes[0.8] < sizes[0.5] < sizes[0.3]
    assert sizes[0.95] < 0.1 * sizes[0.0]


def test_a_pruned_and_quantized_model_decodes_to_exactly_what_was_stored(tmp_path):
    torch.manual_seed(0)
    model = WorkingModel(mlp.build(64, 10, hidden=[64, 32]), _mlp([64, 32]))
    names = [f"{n}.weight" for n, m in model.module.named_modules() if isinstance(m, torch.nn.Linear)]
    prune_unstructured(model, 0.6, "layer")
    model.quantization = INT8
    tensors, section = _encode(model)
    save_file(tensors, tmp_path / "m.safetensors")
    with safe_open(tmp_path / "m.safetensors", framework="pt") as file:
        state, none = decode(file, section)
        kept, integers = decode(file, section, int8_weights=names[:2])
    assert none == {} and set(integers) == set(names[:2]) and len(names) == 3
    assert set(kept) == set(state) - set(names[:2])
    for name, (values, scale) in integers.items():
        assert values.dtype == torch.int8
        assert bool((state[name][~model.masks[name]] == 0).all())  # pruned stays pruned
        assert torch.equal(state[name], values.float() * scale[:, None])
    assert torch.equal(state["net.0.bias"], model.module.net[0].bias.detach())


def _artifact(tmp_path, model, name="artifact"):
    card = ModelCard(
        format="lmaas.artifact/v1", model=model.definition, task="classification", quantization=model.quantization
    )
    model.save(tmp_path / name, card, metrics={})
    return tmp_path / name


def test_a_structured_pruned_artifact_rebuilds_its_smaller_layers_and_computes_the_same(tmp_path):
    torch.manual_seed(0)
    model = WorkingModel(mlp.build(64, 10, hidden=[64, 32]), _mlp([64, 32]))
    prune_structured(model, 0.5, "layer")
    module, card = artifacts.load(_artifact(tmp_path, model))
    assert card.compression.sizes["net.0"] == LayerSize(inputs=64, outputs=32)
    first, second, _ = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    assert first.out_features == 32 and second.in_features == 32
    x = torch.rand(5, 64)
    with torch.no_grad():
        assert torch.equal(module(x), model.module(x))
    # the working model of a compressed input keeps the smaller layers (a later step starts from them)
    again, _ = working_model(tmp_path / "artifact", card, ArtifactCodePolicy())
    assert again.sizes == model.sizes


def test_an_int8_artifact_loads_with_integer_layers_that_predict_like_the_float_model(tmp_path):
    torch.manual_seed(0)
    model = WorkingModel(mlp.build(64, 10, hidden=[1024]), _mlp([1024]), quantization=INT8)
    reference = mlp.build(64, 10, hidden=[1024])
    reference.load_state_dict(model.module.state_dict())
    directory = _artifact(tmp_path, model)
    module, card = artifacts.load(directory)
    assert not any(isinstance(m, torch.nn.Linear) for m in module.modules())
    assert sum(isinstance(m, Int8Linear) for m in module.modules()) == 2
    assert not any(p.requires_grad for p in module.parameters())
    x = torch.rand(64, 64)
    with torch.inference_mode():
        assert (module(x).argmax(1) == reference(x).argmax(1)).float().mean() > 0.95
    header = load_file(directory / "model.safetensors")
    assert header["net.0.weight.values"].dtype == torch.int8


def test_a_pickle_in_a_compressed_artifact_is_refused(tmp_path):
    torch.manual_seed(0)
    model = WorkingModel(mlp.build(64, 10, hidden=[8]), _mlp([8]), quantization=INT8)
    directory = _artifact(tmp_path, model)
    (directory / "extra.pt").write_bytes(b"\x80\x04junk")
    with pytest.raises(artifacts.UnsafeArtifactError):
        artifacts.load(directory)
    with pytest.raises(artifacts.UnsafeArtifactError):
        artifacts.load_float(directory)


def test_a_compressed_artifact_naming_a_shell_command_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    definition = ModelDefinition(factory=artifact_code.HOSTILE_FACTORY, args={"cmd": f"touch {marker}"})
    directory = _artifact(tmp_path, WorkingModel(mlp.build(64, 10, hidden=[8]), definition, quantization=INT8))
    with pytest.raises(ConfigError, match=artifact_code.REFUSAL):
        artifacts.load(directory)
    with pytest.raises(ConfigError, match=artifact_code.REFUSAL):
        artifacts.load_float(directory)
    assert not marker.exists()


def test_a_compressed_user_factory_artifact_loads_when_trusted(tmp_path):
    definition = _mlp([8], factory=artifact_code.USER_FACTORY, delay=0.0)
    directory = _artifact(tmp_path, WorkingModel(mlp.build(64, 10, hidden=[8]), definition, quantization=INT8))
    module, card = artifacts.load(directory, artifact_code=ArtifactCodePolicy(trust_all=True))
    assert type(module).__name__ == "SlowMLP" and sum(isinstance(m, Int8Linear) for m in module.modules()) == 2
    with pytest.raises(ConfigError, match="spec.trustArtifactCode"):
        working_model(directory, card, ArtifactCodePolicy())


class ScaledClassifier(torch.nn.Module):
    """A Linear layer and a buffer computed when built, not stored (`persistent=False`)."""

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.linear = torch.nn.Linear(in_features, num_classes)
        self.register_buffer("scale", torch.arange(1.0, num_classes + 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) * self.scale


def scaled_classifier(in_features: int, num_classes: int) -> torch.nn.Module:
    return ScaledClassifier(in_features, num_classes)


def test_a_buffer_the_model_computes_when_built_is_there_after_loading(tmp_path):
    torch.manual_seed(0)
    definition = ModelDefinition(factory=f"{__name__}:scaled_classifier", args={"in_features": 64, "num_classes": 10})
    model = WorkingModel(scaled_classifier(64, 10), definition, quantization=INT8)
    module, _ = artifacts.load(_artifact(tmp_path, model), artifact_code=ArtifactCodePolicy(trust_all=True))
    assert torch.equal(module.scale, torch.arange(1.0, 11))
    x = torch.rand(5, 64)
    with torch.inference_mode():
        assert torch.allclose(module(x), model.module(x), atol=0.05)


def test_a_pruned_int8_artifact_loads_into_integer_layers_that_keep_its_zeros(tmp_path):
    torch.manual_seed(0)
    model = WorkingModel(mlp.build(64, 10, hidden=[512, 512]), _mlp([512, 512]))
    prune_unstructured(model, 0.7, "layer")
    model.quantization = INT8
    directory = _artifact(tmp_path, model)
    module, card = artifacts.load(directory)
    assert card.compression.tensors["net.2.weight"].layout == "bitmask"
    _, state = working_model(directory, card, ArtifactCodePolicy())
    layers = [m for m in module.modules() if isinstance(m, Int8Linear)]
    assert [layer.kernel == "float32" for layer in layers] == [True, False, True]  # 512x512 computes in int8
    assert torch.equal(layers[1].dequantized_weight(), state["net.2.weight"])
    assert int(torch.count_nonzero(layers[1].weight_int8)) == int(torch.count_nonzero(state["net.2.weight"]))


@pytest.mark.parametrize("change, named", [("drop", "missing ['net.0.bias']"), ("add", "unexpected ['stray']")])
def test_a_compressed_file_without_the_models_tensors_is_refused_naming_them(tmp_path, change, named):
    torch.manual_seed(0)
    directory = _artifact(tmp_path, WorkingModel(mlp.build(64, 10, hidden=[8]), _mlp([8]), quantization=INT8))
    tensors = load_file(directory / "model.safetensors")
    if change == "drop":
        del tensors["net.0.bias"]
    else:
        tensors["stray"] = torch.zeros(1)
    save_file(tensors, directory / "model.safetensors")
    with pytest.raises(ValueError, match=re.escape(named)):
        artifacts.load(directory)
