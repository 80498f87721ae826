"""serving/model_config.py: version directory names, version policies, the config file (no server)."""

import pytest

from serving import model_config as mc
from t2i.errors import T2IError


def test_version_directory_names_follow_simple_atoi():
    assert [mc.parse_version_dir(n) for n in ("1", "00000123", " 7 ", "+3")] == [1, 123, 7, 3]
    for name in ("v1", "1.0", ".tmp-2", "", "1a", "-1", "0x10", str(2**63)):
        assert mc.parse_version_dir(name) is None, name


def test_version_policies(tmp_path):
    for name in ("1", "3", "0010", "v2", ".tmp-4"):
        (tmp_path / name).mkdir()
    (tmp_path / "5").write_text("a file, not a version")
    found = mc.scan_versions(str(tmp_path))
    assert sorted(found) == [1, 3, 10]
    assert mc.aspired_versions(("latest", 1), found) == {10}
    assert mc.aspired_versions(("latest", 2), found) == {3, 10}
    assert mc.aspired_versions(("all",), found) == {1, 3, 10}
    assert mc.aspired_versions(("specific", frozenset({1, 4})), found) == {1}
    assert mc.scan_versions(str(tmp_path / "missing")) is None


def test_config_file_parsing(tmp_path):
    cfg = tmp_path / "models.config"
    cfg.write_text("""model_config_list { config { name: 'a' base_path: '/x/a' model_platform: 'tensorflow'
        model_version_policy { specific { versions: 1 versions: 2 } }
        version_labels { key: 'stable' value: 1 } }
      config { name: 'b' base_path: '/x/b' model_version_policy { all {} } } }""")
    a, b = mc.parse_model_config_file(str(cfg))
    assert (a.name, a.base_path, a.policy, dict(a.version_labels)) == (
        "a", "/x/a", ("specific", frozenset({1, 2})), {"stable": 1})
    assert (b.policy, b.version_labels) == (("all",), {})
    bad = {
        "model_config_list { config { name: 'a' } }": "base_path is empty",
        "model_config_list { config { name: 'a' base_path: '/a' } config { name: 'a' base_path: '/b' } }":
            "listed more than once",
        "model_config_list { config { name: 'a' base_path: '/a' model_platform: 'onnx' } }":
            "model_platform 'onnx'",
        "model_config_list { config { name: 'a' base_path: '/a' model_version_policy "
        "{ specific { versions: 1 } } version_labels { key: 'x' value: 2 } } }": "never loads",
        "model_config_list { nonsense: 1 }": "not a text-format",
        "": "lists no models",
    }
    for text, message in bad.items():
        cfg.write_text(text)
        with pytest.raises(T2IError, match=message):
            mc.parse_model_config_file(str(cfg))
    with pytest.raises(T2IError, match="cannot read"):
        mc.parse_model_config_file(str(tmp_path / "missing.config"))
