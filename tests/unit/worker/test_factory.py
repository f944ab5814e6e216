"""lmaas_worker.factory: importing user code and calling builders with the spec's args."""

import pytest

from lmaas_api.errors import ConfigError
from lmaas_worker.factory import call_builder, import_factory


def build(width: int, num_classes: int = 2, **options):
    return {"width": width, "num_classes": num_classes, **options}


def reject(size: int):
    raise ValueError(f"size {size} is odd")


def test_import_factory_finds_the_function():
    assert import_factory(f"{__name__}:build", "spec.model.factory") is build


@pytest.mark.parametrize(
    "reference,message",
    [
        ("not a reference", "is not of the form"),
        ("no_such_module_anywhere:fn", "cannot import module 'no_such_module_anywhere'"),
        (f"{__name__}:absent", "has no attribute 'absent'"),
        (f"{__name__}:pytest", "is not callable"),
    ],
)
def test_import_failures_name_the_field(reference, message):
    with pytest.raises(ConfigError) as error:
        import_factory(reference, "spec.model.factory")
    assert error.value.field == "spec.model.factory" and message in str(error.value)


def test_hints_reach_only_the_parameters_a_builder_names_and_args_win():
    result, used = call_builder(build, {"width": 3}, {"num_classes": 7, "vocab_size": 99}, "spec.model.args")
    assert result == {"width": 3, "num_classes": 7} and used == {"width": 3, "num_classes": 7}
    result, _ = call_builder(build, {"width": 3, "num_classes": 4}, {"num_classes": 7}, "spec.model.args")
    assert result["num_classes"] == 4


def test_arguments_that_do_not_fit_or_are_rejected_are_configuration_errors():
    with pytest.raises(ConfigError, match="spec.model.args: arguments do not fit"):
        call_builder(build, {}, {}, "spec.model.args")
    with pytest.raises(ConfigError, match="size 3 is odd"):
        call_builder(reject, {"size": 3}, {}, "spec.model.args")
