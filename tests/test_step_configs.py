"""Each step holds the settings of the method, backend, mode or student it is given: another one's setting is a
one-line error naming the field and the choice, Python-built steps are type-checked, and ``recipe.yaml`` writes
only the settings that apply."""

import pytest

from optimum_bengali import (DistilStep, PruneStep, QuantizeStep, RecipeError, list_recipes, load_recipe)
from optimum_bengali.steps import SettingError


@pytest.mark.parametrize("cls, settings, field, choice", [
    (QuantizeStep, dict(backend="torch", mode="dynamic", max_macro_f1_drop=0.5), "max_macro_f1_drop", "'dynamic'"),
    (QuantizeStep, dict(backend="torch", mode="dynamic", compress_embeddings=False), "compress_embeddings", "'torch'"),
    (QuantizeStep, dict(backend="torch", mode="dynamic", num_samples=5), "num_samples", "'dynamic'"),
    (QuantizeStep, dict(mode="weight_only", num_samples=5), "num_samples", "'weight_only'"),
    (QuantizeStep, dict(backend="inc", mode="static", static_lengths=[16, 32]), "static_lengths", "'inc'"),
    (DistilStep, dict(student="cut", hidden_size=128), "hidden_size", "'cut'"),
    (DistilStep, dict(student="cut", checkpoint="x"), "checkpoint", "'cut'"),
    (DistilStep, dict(student="checkpoint", checkpoint="x", num_layers=4), "num_layers", "'checkpoint'"),
    (DistilStep, dict(mode="black_box", layer_map={0: 1}), "layer_map", "'black_box'"),
    (DistilStep, dict(layers=[0, 1], num_layers=4), "num_layers", "layers"),
    (PruneStep, dict(method="magnitude", ffn_keep=0.3), "ffn_keep", "'magnitude'"),
    (PruneStep, dict(method="structured", sparsity=0.9), "sparsity", "'structured'"),
    (PruneStep, dict(method="structured", alpha=0.9), "alpha", "'finetune'"),
])
def test_a_setting_of_another_choice_is_a_one_line_error(cls, settings, field, choice):
    with pytest.raises(SettingError) as err:  # built in Python
        cls(**settings)
    msg = str(err.value)
    assert f"'{field}'" in msg and choice in msg and "\n" not in msg, msg
    with pytest.raises(RecipeError) as err:  # the same from a recipe file or mapping
        load_recipe({"name": "x", "steps": [{"type": cls.type_name, **settings}]})
    assert f"'{field}'" in str(err.value) and choice in str(err.value)


@pytest.mark.parametrize("cls, settings, field", [
    (DistilStep, dict(num_layers="4"), "num_layers"), (QuantizeStep, dict(num_samples=2.5), "num_samples"),
    (PruneStep, dict(method="lottery"), "method"), (DistilStep, dict(layer_map={"0": 1}), "layer_map"),
])
def test_steps_built_in_python_are_type_checked(cls, settings, field):
    with pytest.raises(SettingError) as err:
        cls(**settings)
    assert f"'{field}'" in str(err.value)


def test_ints_widen_to_floats_in_python_as_in_yaml():
    assert DistilStep(epochs=3).epochs == 3.0 and isinstance(DistilStep(epochs=3).epochs, float)


def test_recipe_yaml_of_every_shipped_recipe_holds_only_the_settings_that_apply():
    seen_variants = set()
    for name, _ in list_recipes():
        for step in load_recipe(name).steps:
            written = step.to_dict()
            assert not set(written) & set(step.not_applicable()), (name, step.type_name)
            seen_variants.add((step.type_name, written.get("method") or written.get("backend")))
    assert {("prune", "magnitude"), ("prune", "structured"), ("quantize", "openvino"),
            ("quantize", "torch")} <= seen_variants
    magnitude = PruneStep(method="magnitude").to_dict()
    assert "ffn_keep" not in magnitude and "recovery" not in magnitude and "sparsity" in magnitude
    torch_int8 = QuantizeStep(backend="torch", mode="dynamic").to_dict()
    assert not {"num_samples", "compress_embeddings", "max_macro_f1_drop", "static_lengths"} & set(torch_int8)
    cut = DistilStep(num_layers=4).to_dict()
    assert cut["num_layers"] == 4 and "hidden_size" not in cut and "layer_map" not in cut


def test_an_old_recipe_file_with_every_field_at_its_default_still_loads(tmp_path):
    """recipe.yaml files written before this change hold every field; those at their defaults load unchanged."""
    import dataclasses

    import yaml

    full = {"type": "prune", **{f.name: getattr(PruneStep(), f.name) for f in dataclasses.fields(PruneStep)}}
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump({"name": "old", "steps": [full]}), encoding="utf-8")
    assert load_recipe(path).steps[0] == PruneStep()
