import pytest
import yaml

from optimum_bengali import Recipe, RecipeError, list_recipes, load_recipe
from optimum_bengali.recipe import available_steps


def write(tmp_path, data, name="r.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_every_shipped_recipe_loads_and_round_trips():
    names = [n for n, _ in list_recipes()]
    assert "quant-static-int8" in names
    for name, description in list_recipes():
        assert description, f"{name} has no description"
        recipe = load_recipe(name)
        again = Recipe.from_dict(yaml.safe_load(recipe.to_yaml()))
        assert again == recipe
        assert again.to_dict() == recipe.to_dict()


def test_registry_has_every_technique():
    assert {"finetune", "distil", "prune", "trim_vocab", "quantize", "export"} <= set(available_steps())


def test_unknown_step_type_names_file_step_and_field(tmp_path):
    path = write(tmp_path, {"name": "x", "steps": [{"type": "quantize"}, {"type": "distill"}]})
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    msg = str(err.value)
    assert str(path) in msg and "step 1" in msg and "'type'" in msg and "'distill'" in msg and "distil" in msg


@pytest.mark.parametrize("step, field", [
    ({"type": "quantize", "bits": 8}, "'bits'"),                          # unknown field
    ({"type": "quantize", "num_samples": "many"}, "'num_samples'"),        # wrong type
    ({"type": "quantize", "num_samples": 0}, "'num_samples'"),             # out of range
    ({"type": "quantize", "backend": "tensorrt"}, "'backend'"),            # not a choice
    ({"type": "quantize", "backend": "torch", "mode": "static"}, "'mode'"),  # mode not offered
    ({"type": "distil", "temperature": 0}, "'temperature'"),
    ({"type": "distil", "alpha": 1.5}, "'alpha'"),
    ({"type": "prune", "sparsity": 1.0}, "'sparsity'"),
    ({"type": "prune", "sparsity": -0.1}, "'sparsity'"),
    ({"type": "prune", "method": "structured", "sparsity": 0.7}, "'sparsity'"),
    ({"type": "prune", "method": "magnitude", "heads_keep": 0.5}, "'heads_keep'"),  # structured only
    ({"type": "prune", "method": "structured", "ffn_keep": 1.0}, "'ffn_keep'"),     # removes nothing
    ({"type": "prune", "method": "structured", "heads_keep": 0}, "'heads_keep'"),
    ({"type": "finetune", "epochs": True}, "'epochs'"),
])
def test_bad_settings_name_the_field(tmp_path, step, field):
    path = write(tmp_path, {"name": "x", "steps": [{"type": "finetune", "max_steps": 1}, step]})
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    msg = str(err.value)
    assert str(path) in msg and "step 1" in msg and field in msg


def test_steps_built_in_python_are_checked_like_yaml():
    from optimum_bengali.pruning.step import PruneStep
    from optimum_bengali.steps import SettingError

    with pytest.raises(SettingError, match="'heads_keep'"):
        PruneStep(method="magnitude", heads_keep=0.5)


def test_training_after_quantization_is_rejected(tmp_path):
    path = write(tmp_path, {"name": "x", "steps": [{"type": "quantize"}, {"type": "finetune"}]})
    with pytest.raises(RecipeError, match="quantization last"):
        load_recipe(path)


def test_top_level_errors(tmp_path):
    with pytest.raises(RecipeError, match="'stepz'"):
        load_recipe(write(tmp_path, {"name": "x", "stepz": []}))
    with pytest.raises(RecipeError, match="non-empty list"):
        load_recipe(write(tmp_path, {"name": "x", "steps": []}))
    with pytest.raises(RecipeError, match="unknown recipe 'no-such-recipe'"):
        load_recipe("no-such-recipe")
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(tmp_path / "missing.yaml")


def test_python_recipe_equals_yaml(tmp_path):
    from optimum_bengali.quantization.step import QuantizeStep

    recipe = Recipe(name="q", steps=[QuantizeStep(backend="torch", mode="dynamic")])
    recipe.save(tmp_path / "q.yaml")
    assert load_recipe(tmp_path / "q.yaml") == recipe
