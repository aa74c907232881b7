import pytest

from nvfilter.errors import PresetError
from nvfilter.io import presets

REQUIRED = [
    "reconstruct",
    "slowmo-2x",
    "slowmo-4x",
    "slowmo-8x",
    "fps-2x",
    "upscale-2x",
    "upscale-4x",
]


def test_required_presets_are_shipped():
    assert set(REQUIRED) <= set(presets.available())


@pytest.mark.parametrize("name", sorted(presets.available()))
def test_every_shipped_preset_parses_and_has_a_description(name):
    presets.load(name)
    assert presets.describe(presets.available()[name])


def test_slowmo_and_upscale_values():
    assert presets.load("slowmo-4x") == {"temporal_scale": 4, "between": "motion"}
    assert presets.load("fps-2x") == {"temporal_scale": 2, "fps": "2x", "between": "motion"}
    assert presets.load("upscale-2x") == {"spatial_scale": 2, "upscaler": "backproject"}
    assert presets.load("upscale-4x") == {"spatial_scale": 4, "upscaler": "backproject"}


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(PresetError, match="unknown preset 'nope'.*slowmo-4x"):
        presets.load("nope")


def test_user_preset_file(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('description = "x"\ntemporal_scale = 3\ncrf = 20\n')
    assert presets.load(str(path)) == {"temporal_scale": 3, "crf": 20}


def test_unknown_key_and_wrong_type_are_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("temporal_scael = 3\n")
    with pytest.raises(PresetError, match="unknown key 'temporal_scael'"):
        presets.load(str(bad))
    bad.write_text('crf = "high"\n')
    with pytest.raises(PresetError, match="crf has the wrong type"):
        presets.load(str(bad))
    bad.write_text("crf = [\n")
    with pytest.raises(PresetError, match="cannot be read"):
        presets.load(str(bad))
    with pytest.raises(PresetError, match="does not exist"):
        presets.load(str(tmp_path / "missing.toml"))


def test_flags_override_preset():
    merged = presets.merge({"temporal_scale": 4, "crf": 20}, {"crf": 10, "fps": None})
    assert merged == {"temporal_scale": 4, "crf": 10}


def test_installed_command_finds_presets_outside_the_source_tree(tmp_path):
    import shutil
    import subprocess

    exe = shutil.which("nvfilter")
    if exe is None:
        pytest.skip("nvfilter is not installed as a command")
    result = subprocess.run([exe, "presets"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert all(name in result.stdout for name in REQUIRED)
