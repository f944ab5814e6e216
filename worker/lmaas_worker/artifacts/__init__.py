"""Model artifacts: a directory that rebuilds a module without running any pickle.

    model.safetensors   the weights, in the layout the card says (below)
    model.json          the model card (`lmaas_api.card.ModelCard`): how to rebuild the module
                        (builtin or "pkg.mod:fn" plus arguments), task, input, classes or
                        vocabulary, dtype, quantization, sparsity, the data set, the producing
                        resource, creation time
    metrics.json        final figures of the run
    curves.png          loss and held-out metric against the step (for people)

One module per layout of the weights, each with its writer and its loaders:

- `dense`: the float32 state dict (what training a builtin or factory model writes);
- `compressed`: integer (int8, int4), bitmask-sparse and structurally smaller layers (what
  compression writes), with the integer codes in `quantize`, the int8 kernels in `int8_backend`
  and the layers they apply to in `layers`;
- `huggingface`: a Hugging Face model folder (config, safetensors weights, tokenizer) with the
  card and metrics beside it (what training a `spec.model.hf` writes; the card's layout says so).

Each layout module has `save`, and `load` and `load_float` for a directory and its card;
`loading.load(path, artifact_code=...)` picks the layout from the card and returns
`(module in eval mode, card)`:

    from lmaas_worker.artifacts import load
    module, card = load("path/to/artifact")
    logits = module(inputs)

A card that names a user factory loads only with an `ArtifactCodePolicy` that allows it, passed
as `artifact_code=` (see `lmaas_worker.models`). `files` holds what writing and reading rely on:
directories replaced atomically, and the refusal of pickles. `writing` writes the files every
layout shares.
"""

from .files import UnsafeArtifactError
from .loading import checked_card, load, load_float
from .writing import copy_artifact

__all__ = ["UnsafeArtifactError", "checked_card", "copy_artifact", "load", "load_float"]
