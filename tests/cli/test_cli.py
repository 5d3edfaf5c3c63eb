"""The command line: one-line errors with exit code 2, and files that match what it says."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from medsynth.cli import main
from medsynth.generation.provenance import read_provenance


@pytest.fixture
def cli(tiny_pack, monkeypatch, capsys):
    monkeypatch.setenv("MEDSYNTH_REGISTRY", str(tiny_pack.registry_path))
    monkeypatch.setenv("MEDSYNTH_PACK", tiny_pack.pack)

    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--domain", "delta", "--label", "a1"], "unknown domain 'delta'"),
        (["--domain", "alpha", "--label", "zz"], "unknown class 'zz'"),
        (["--domain", "gamma", "--label", "g1"], "unavailable"),
        (["--domain", "alpha", "--label", "a1", "--n", "0"], "n must be between 1 and 64"),
        (["--domain", "alpha", "--label", "a1", "--n", "100000"], "n must be between 1 and 64"),
        (["--domain", "alpha", "--label", "a1", "--steps", "0"], "steps must be between"),
        (["--domain", "alpha", "--label", "a1", "--steps", "9999"], "steps must be between"),
        (["--domain", "alpha", "--label", "a1", "--seed", "1.5"], "invalid int value: '1.5'"),
        (["--domain", "alpha", "--label", "a1", "--seed", "abc"], "invalid int value: 'abc'"),
        (["--domain", "alpha", "--label", "a1", "--attr", "side"], "name=value"),
        (["--domain", "alpha"], "give --label or --prompt"),
        (["--domain", "alpha", "--prompt", "   "], "prompt is empty"),
        (["--label", "a1"], "required: --domain"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code_2(cli, tmp_path, argv, message):
    code, out, err = cli("generate", *argv, "--out", str(tmp_path / "out"))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_generate_writes_the_pngs_and_manifest_it_reports(cli, tmp_path):
    out = tmp_path / "out"
    request = ["generate", "--domain", "alpha", "--label", "a3", "--attr", "age=50", "--n", "3", "--seed", "7"]
    code, stdout, _ = cli(*request, "--out", str(out), "--quiet")
    assert code == 0 and "wrote 3 image(s)" in stdout and "seed: 7" in stdout
    with (out / "manifest.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["seed"] for row in rows] == ["7", "8", "9"]
    assert sorted(p.name for p in out.glob("*.png")) == sorted(row["file"] for row in rows)
    for row in rows:
        record = read_provenance(out / row["file"])
        assert record["prompt"] == row["prompt"] == "alpha scan showing a3 finding, 50-year-old"
        assert str(record["seed"]) == row["seed"] and record["scores"]["predicted"] == row["predicted"]
    # the same request again replaces rows instead of duplicating them; a new seed adds rows
    cli(*request, "--out", str(out), "--quiet")
    cli(*request[:-4], "--n", "1", "--seed", "100", "--out", str(out), "--quiet")
    with (out / "manifest.csv").open() as handle:
        assert [row["seed"] for row in csv.DictReader(handle)] == ["7", "8", "9", "100"]


def test_generate_with_validation_writes_only_accepted_images(cli, tmp_path):
    out = tmp_path / "val"
    code, stdout, _ = cli(
        "generate",
        "--domain",
        "alpha",
        "--label",
        "a1",
        "--n",
        "2",
        "--seed",
        "0",
        "--validate",
        "--threshold",
        "0.3",
        "--max-rounds",
        "3",
        "--out",
        str(out),
        "--quiet",
    )
    assert code == 0 and "classifier agreement" in stdout
    with (out / "manifest.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(row["accepted"] == "True" and row["predicted"] == "a1" for row in rows)


def test_domains_lists_classes_and_availability(cli):
    code, out, _ = cli("domains")
    assert code == 0
    assert "alpha — Alpha, alpha scan: available" in out
    assert "gamma — Gamma, gamma scan: unavailable (adapter" in out
    assert "a1 finding: Class a1" in out


def test_unknown_pack_is_a_usage_error(cli):
    code, _, err = cli("domains", "--pack", "nope")
    assert code == 2 and "unknown model pack 'nope'" in err


def test_help_documents_every_command():
    for argv in ([], ["domains"], ["generate"]):
        result = subprocess.run([sys.executable, "-m", "medsynth", *argv, "--help"], capture_output=True, text=True)
        assert result.returncode == 0 and "usage: medsynth" in result.stdout


def test_generate_says_how_to_keep_images_when_none_pass_validation(cli, tmp_path):
    # threshold 1.0 cannot be met by a softmax probability below 1: every attempt is rejected
    argv = ["generate", "--domain", "alpha", "--label", "a1", "--n", "2", "--seed", "0", "--validate", "--threshold", "1.0",
            "--max-rounds", "2", "--quiet"]  # fmt: skip
    code, stdout, err = cli(*argv, "--out", str(tmp_path / "none"))
    assert code == 0 and "wrote 0 image(s)" in stdout and "--keep-rejected" in err
    code, stdout, err = cli(*argv, "--keep-rejected", "--out", str(tmp_path / "kept"))
    assert code == 0 and "wrote 4 image(s)" in stdout and "--keep-rejected" not in err


def _every_parser(parser, path=()):
    """(command path, parser) for the whole tree of subcommands."""
    import argparse

    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _every_parser(child, (*path, name))


def test_every_flag_of_every_command_has_real_help():
    from medsynth.cli import build_parser

    seen = 0
    for path, parser in _every_parser(build_parser()):
        for action in parser._actions:
            if not action.option_strings or action.dest == "help":
                continue
            seen += 1
            text = (action.help or "").split(" (default:")[0].strip()
            assert len(text) >= 8, (
                f"medsynth {' '.join(path)} {action.option_strings[0]} has no real help: {action.help!r}"
            )
            assert (action.help or "").count("default:") <= 1, f"the default said twice: {action.help!r}"
    assert seen > 150  # every train / evaluate option is in the tree


def test_a_config_field_the_parser_cannot_express_is_an_error():
    import argparse
    from dataclasses import dataclass

    from medsynth.cli.parsing import add_config_options
    from medsynth.configs import option

    @dataclass
    class Odd:
        mapping: dict = option(help="a mapping, which no flag can express", factory=dict)

    with pytest.raises(TypeError, match="no command-line flag can express"):
        add_config_options(argparse.ArgumentParser(), Odd)

    @dataclass
    class Mute:
        steps: int = 3

    with pytest.raises(TypeError, match="has no help text"):
        add_config_options(argparse.ArgumentParser(), Mute)


def test_config_flags_parse_tuples_booleans_and_refuse_bad_yes_no(capsys):
    from medsynth.cli import build_parser

    args = build_parser().parse_args(["train", "autoencoder", "--block-out-channels", "8,16", "--mid-attention", "no"])
    assert args.block_out_channels == (8, 16) and args.mid_attention is False
    assert main(["train", "autoencoder", "--mid-attention", "maybe"]) == 2
    assert "expected yes or no" in capsys.readouterr().err
    assert main(["train", "lora", "--steps", "3"]) == 2  # --domain is required: it has no default
    assert "--domain" in capsys.readouterr().err


def test_the_global_registry_reaches_config_commands(tiny_pack, tmp_path, monkeypatch, capsys):
    """`--registry` is read by every command that loads a registry, including the config-driven ones."""
    from medsynth.paths import DEFAULT_REGISTRY

    monkeypatch.setenv(
        "MEDSYNTH_REGISTRY", str(DEFAULT_REGISTRY)
    )  # main() sets it for the process: restored after the test
    out = tmp_path / "ceiling.json"
    code = main(
        [
            "--registry",
            str(tiny_pack.registry_path),
            "evaluate-autoencoder",
            "--vae",
            str(tmp_path / "none"),
            "--out",
            str(out),
        ]
    )
    assert code == 1 and "not an AutoencoderKL folder" in capsys.readouterr().err
    code = main(["--registry", str(tiny_pack.registry_path), "train", "classifier", "--domain", "dermatology"])
    assert (
        code == 1 and "unknown domain 'dermatology'" in capsys.readouterr().err
    )  # the tiny registry has no such domain
    assert main(["--registry", str(tmp_path / "missing.toml"), "domains"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_the_installed_console_script_runs_the_cli():
    import shutil

    script = shutil.which("medsynth", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the package is not installed in this environment (make setup installs it with pip install -e .)")
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "usage: medsynth" in result.stdout


USER_LAYER = """# my team's own domains
[domains.skin2]
modality = "photo"
prompt_templates = ["photo of {class_name}"]
classes = [{ code = "x", name = "X", description = "x" }, { code = "y", name = "Y", description = "y" }]

[domains.skin2.sources.mini]
adapter = "skin2/lora"
classifier = "skin2/classifier"
clip = "skin2/clip"

# the eyes stay
[domains.eyes2]
modality = "fundus"
prompt_templates = ["fundus with {class_name}"]
classes = [{ code = "p", name = "P", description = "p" }, { code = "q", name = "Q", description = "q" }]
[domains.eyes2.sources.mini]
unavailable = "not trained yet"
"""


def test_domain_check_names_every_problem_in_one_line_each(tmp_path, capsys):
    user = tmp_path / "registry.toml"
    assert main(["--user-registry", str(user), "domain", "check"]) == 0  # the shipped registry and pack alone
    assert "every domain's files for mini are in place" in capsys.readouterr().out
    user.write_text(USER_LAYER)
    (tmp_path / "skin2" / "lora").mkdir(parents=True)
    (tmp_path / "skin2" / "classifier").mkdir()
    (tmp_path / "skin2" / "classifier" / "config.json").write_text("{}")
    assert main(["--user-registry", str(user), "domain", "check"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"skin2 (mini): adapter folder {tmp_path}/skin2/lora lacks pytorch_lora_weights.safetensors",
        f"skin2 (mini): classifier folder {tmp_path}/skin2/classifier lacks model.safetensors",
        f"skin2 (mini): clip folder {tmp_path}/skin2/clip not found",
        "3 problem(s)",
    ]
    user.write_text(USER_LAYER.replace('modality = "photo"', 'modality = "photo"\nmirorr = true'))
    assert main(["--user-registry", str(user), "domain", "check"]) == 1  # a typo: the registry's own line
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == f"{user}:4: unknown key `mirorr` in [domains.skin2]: did you mean `mirror`?"


def test_domain_remove_takes_only_a_user_domain_out_and_keeps_the_rest(tmp_path, capsys):
    user = tmp_path / "registry.toml"
    user.write_text(USER_LAYER)
    assert main(["--user-registry", str(user), "domain", "remove", "dermatology"]) == 2
    assert "not in the user layer" in capsys.readouterr().err
    assert main(["--user-registry", str(user), "domain", "remove", "nope"]) == 2
    assert main(["--user-registry", str(user), "domain", "remove", "skin2"]) == 0
    assert "removed skin2" in capsys.readouterr().out
    text = user.read_text()
    assert "skin2" not in text and "[domains.eyes2]" in text and "# the eyes stay" in text
    assert "# my team's own domains" in text
    assert main(["--user-registry", str(user), "domains"]) == 0
    listed = capsys.readouterr().out
    assert "eyes2" in listed and "skin2" not in listed
