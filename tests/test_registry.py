import pytest

from medsynth.registry import RegistryError, Source, load_registry

REAL = {"dermatology": 7, "ophthalmology": 8, "brain_mri": 4, "chest_xray": 3, "pathology": 9}


def test_real_registry_has_the_five_domains_with_described_classes():
    registry = load_registry()
    assert {name: len(d.classes) for name, d in registry.domains.items()} == REAL
    for domain in registry.domains.values():
        assert domain.modality
        for info in domain.classes:
            assert len(info.description) > 30, f"{domain.name}/{info.code} needs a real description"
        assert set(domain.sources) == {"mini", "sd15"}
    assert registry.get_domain("dermatology").get_class("MEL").code == "mel"
    assert registry.get_domain("dermatology").rare_classes == ("akiec", "vasc", "df")  # the rare classes
    assert set(registry.packs) == {"mini", "sd15"}
    assert registry.get_pack("sd15").base.hub_id == "stable-diffusion-v1-5/stable-diffusion-v1-5"


def test_pathology_is_unavailable_in_mini_with_the_reason():
    availability = load_registry().domain_availability("mini")
    assert not availability["pathology"].available
    assert "9 example tiles" in availability["pathology"].reason


def test_missing_files_make_a_domain_unavailable_and_the_rest_keeps_working(tiny_registry):
    availability = tiny_registry.domain_availability("tiny")
    assert availability["alpha"].available and availability["beta"].available
    assert not availability["gamma"].available
    assert "adapter" in availability["gamma"].reason and "not found" in availability["gamma"].reason


def test_unknown_names_are_reported_with_the_choices(tiny_registry):
    with pytest.raises(KeyError, match="choose one of alpha, beta, gamma"):
        tiny_registry.get_domain("delta")
    with pytest.raises(KeyError, match="unknown class 'zz'"):
        tiny_registry.get_domain("alpha").get_class("zz")
    with pytest.raises(KeyError, match="unknown model pack"):
        tiny_registry.get_pack("nope")


def test_sources_parse_local_paths_and_hub_ids(tmp_path):
    local = Source.parse("models/x", tmp_path)
    assert local.path == tmp_path / "models" / "x" and not local.is_hub
    assert local.missing_reason().endswith("not found")
    hub = Source.parse("hf-hub:owner/name", tmp_path)
    assert hub.is_hub and hub.location == "owner/name" and hub.missing_reason() is None
    with pytest.raises(RegistryError, match="owner/name"):
        Source.parse("hf-hub:just-a-name", tmp_path)


GOOD_DOMAIN = """
[packs.p]
base = "base"
[domains.d]
modality = "scan"
prompt_templates = ["scan of {class_name}{attributes}"]
classes = [{ code = "a", name = "A", description = "a" }, { code = "b", name = "B", description = "b" }]
attributes = [{ name = "age", phrase = "{value} years", min = 1, max = 9 }]
"""


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace('modality = "scan"\n', ""), "domains.d: missing required field 'modality'"),
        (lambda t: t.replace('base = "base"', "base = 3"), "packs.p.base: expected str"),
        (lambda t: t.replace("scan of {class_name}", "scan of"), r"domains.d.prompt_templates\[0\]: must contain"),
        (lambda t: t.replace('code = "b"', 'code = "A"'), "duplicate class codes"),
        (lambda t: t.replace('name = "B", ', ""), r"domains.d.classes\[1\]: missing required field 'name'"),
        (lambda t: t + '[domains.d.sources.q]\nadapter = "x"\n', "domains.d.sources.q: no such pack"),
        (lambda t: t + '[domains.d.sources.p]\nadaptor = "x"\n', r"unknown key `adaptor`.*did you mean `adapter`"),
        (lambda t: t.replace("min = 1, max = 9", "min = 9, max = 1"), "min 9 is larger"),
        (lambda t: t.replace('"{value} years"', '"years"'), r"attributes\[age\].phrase: must contain"),
        (lambda t: t.replace("[packs.p]", "[packs.p"), "not valid TOML"),
        (
            lambda t: t.replace('description = "b" }', 'description = "b", rare = "yes" }'),
            r"classes\[1\].rare: must be true or false",
        ),
        (
            lambda t: t + '[domains.d.sources.p]\nbase_unconditional = "yes"\n',
            "domains.d.sources.p.base_unconditional: must be true or false",
        ),
        (
            lambda t: t + "[domains.d.sources.p]\nprobe_accuracy_share = 75\n",
            "domains.d.sources.p.probe_accuracy_share: must be a number between 0 and 1",
        ),
        (
            lambda t: t + "[domains.d.sources.p]\nguidance = 0.5\n",
            "domains.d.sources.p.guidance: must be a number between 1 and 30",
        ),
        (
            lambda t: t.replace('modality = "scan"', 'modality = "scan"\nmirror = 1'),
            "domains.d.mirror: must be true or false",
        ),
        (
            lambda t: t.replace(
                'modality = "scan"', 'modality = "scan"\ncaptions = { attributes = { patient_age = "years" } }'
            ),
            "domains.d.captions.attributes.patient_age: 'years' is not an attribute",
        ),
        (
            lambda t: t.replace('modality = "scan"', 'modality = "scan"\ncaptions = { notes = "notes" }'),
            "domains.d.captions.notes: must be a list",
        ),
        (
            lambda t: t.replace('base = "base"', 'base = "base"\ntrains = ["d", "z"]'),
            "packs.p.trains: unknown domain.*z",
        ),
    ],
)
def test_registry_errors_name_the_bad_field(tmp_path, edit, message):
    text = edit(GOOD_DOMAIN)
    assert text != GOOD_DOMAIN
    path = tmp_path / "registry.toml"
    path.write_text(text)
    with pytest.raises(RegistryError, match=message):
        load_registry(path)


def test_good_minimal_registry_loads(tmp_path):
    path = tmp_path / "registry.toml"
    path.write_text(GOOD_DOMAIN)
    registry = load_registry(path)
    assert registry.get_domain("d").class_codes == ("a", "b")
    assert registry.get_domain("d").rare_classes == ()
    path.write_text(GOOD_DOMAIN.replace('description = "b" }', 'description = "b", rare = true }'))
    assert load_registry(path).get_domain("d").rare_classes == ("b",)
    assert not registry.domain_availability("p")["d"].available
    assert not registry.get_domain("d").sources_for("p").base_unconditional
    path.write_text(GOOD_DOMAIN + "[domains.d.sources.p]\nbase_unconditional = true\n")
    assert load_registry(path).get_domain("d").sources_for("p").base_unconditional
    assert registry.default_guidance("p", "d") == registry.get_pack("p").default_guidance
    path.write_text(GOOD_DOMAIN + "[domains.d.sources.p]\nguidance = 3\n")
    assert load_registry(path).default_guidance("p", "d") == 3.0 != registry.get_pack("p").default_guidance


def test_domain_facts_live_in_the_registry():
    """What used to be hard-coded per domain: trained domains, mirroring, caption columns, sources, bars."""
    registry = load_registry()
    assert registry.trained_domains() == ("dermatology", "ophthalmology", "brain_mri", "chest_xray")
    assert {n for n, d in registry.domains.items() if d.mirror} == {"dermatology", "brain_mri", "pathology"}
    assert registry.get_domain("chest_xray").source_column == "source"
    assert registry.get_domain("ophthalmology").captions.findings == ("keywords",)
    assert registry.get_domain("dermatology").captions.phrases["confirmed_by"]["histo"] == "confirmed by histopathology"
    for name in registry.trained_domains():
        domain = registry.get_domain(name)
        assert domain.data.description and domain.data.licence and domain.limitations
        assert 0 < domain.sources_for("mini").probe_accuracy_share <= 1


def test_no_domain_name_is_written_in_the_package_code():
    """Adding a domain touches the registry and data, never code (comments and docstrings may name one)."""
    import ast
    import io
    import tokenize

    from medsynth.paths import PROJECT_ROOT

    names = set(load_registry().domains)
    found = []
    for path in (PROJECT_ROOT / "medsynth").rglob("*.py"):
        source = path.read_text()
        docstrings = {
            node.body[0].value.lineno for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
            and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
        }  # fmt: skip
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE) or token.start[0] in docstrings:
                continue
            if any(name in token.string.lower() for name in names):
                found.append(f"{path.relative_to(PROJECT_ROOT)}:{token.start[0]}: {token.string[:60]}")
    assert found == []


def test_missing_registry_file_is_a_clear_error(tmp_path):
    with pytest.raises(RegistryError, match="registry file not found"):
        load_registry(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    "edit, key, table, line, suggestion",
    [
        (lambda t: t.replace('modality = "scan"', 'modality = "scan"\ngray = true'), "gray", "domains.d", 6, "grey"),
        (lambda t: t.replace('modality = "scan"', 'modality = "scan"\nmirorr = true'), "mirorr", "domains.d", 6, "mirror"),
        (lambda t: t.replace('base = "base"', 'base = "base"\ndefault_stpes = 5'), "default_stpes", "packs.p", 4, "default_steps"),
        (lambda t: t.replace('description = "b" }', 'description = "b", raer = true }'), "raer", "domains.d.classes[1]", 7, "rare"),
        (lambda t: t + "[domains.d.sources.p]\nguidence = 3\n", "guidence", "domains.d.sources.p", 10, "guidance"),
        (lambda t: t.replace('modality = "scan"', 'modality = "scan"\ndata = { licence = "x", licnse = "y" }'), "licnse", "domains.d.data", 6, "licence"),
        (lambda t: t.replace('modality = "scan"', 'modality = "scan"\ncaptions = { finding = ["f"] }'), "finding", "domains.d.captions", 6, "findings"),
        (lambda t: "domians = {}\n" + t, "domians", "registry", 1, "domains"),
    ],
)  # fmt: skip
def test_every_table_refuses_unknown_keys_naming_file_line_and_the_closest_key(
    tmp_path, edit, key, table, line, suggestion
):
    path = tmp_path / "registry.toml"
    path.write_text(edit(GOOD_DOMAIN))
    with pytest.raises(RegistryError) as caught:
        load_registry(path)
    assert str(caught.value) == f"{path}:{line}: unknown key `{key}` in [{table}]: did you mean `{suggestion}`?"


def test_an_unknown_key_nothing_resembles_lists_the_known_ones(tmp_path):
    path = tmp_path / "registry.toml"
    path.write_text(GOOD_DOMAIN.replace('modality = "scan"', 'modality = "scan"\nzzzz = 1'))
    with pytest.raises(RegistryError, match=r"unknown key `zzzz` in \[domains.d\]: known keys: display_name, modality"):
        load_registry(path)


def test_the_shipped_registry_holds_no_unknown_key():
    registry = load_registry()  # every table of the shipped file passes the strict check
    assert registry.user_path is None and registry.user_domains() == ()


USER_LAYER = """
[domains.own]
modality = "photo"
prompt_templates = ["photo of {class_name}"]
classes = [{ code = "x", name = "X", description = "x" }, { code = "y", name = "Y", description = "y" }]
[domains.own.sources.p]
adapter = "own/lora"
classifier = "own/classifier"
clip = "own/clip"
[domains.d.sources.p]
adapter = "d_adapter"
"""


def test_a_user_layer_adds_domains_and_sources_over_the_shipped_file(tmp_path):
    shipped = tmp_path / "assets" / "registry.toml"
    shipped.parent.mkdir()
    shipped.write_text(GOOD_DOMAIN)
    user = tmp_path / "runs" / "registry.toml"
    alone = load_registry(shipped, user=user)  # no user file yet: the shipped domains alone, the layer's place known
    assert alone.user_path == user and alone.user_domains() == () and set(alone.domains) == {"d"}
    user.parent.mkdir()
    user.write_text(USER_LAYER)
    registry = load_registry(shipped, user=user)
    assert list(registry.domains) == ["d", "own"] and registry.user_domains() == ("own",)
    assert (
        registry.get_domain("own").sources_for("p").adapter.path == user.parent / "own" / "lora"
    )  # the layer's folder
    assert registry.get_domain("d").sources_for("p").adapter.path == user.parent / "d_adapter"
    assert registry.get_domain("d").class_codes == ("a", "b") and registry.get_domain("d").defined_in == shipped
    assert load_registry(shipped).domains.keys() == {"d"}  # two registries side by side in one process


def test_a_user_layer_may_not_redefine_a_shipped_domain_or_misspell_a_key(tmp_path):
    shipped, user = tmp_path / "registry.toml", tmp_path / "user.toml"
    shipped.write_text(GOOD_DOMAIN)
    user.write_text('[domains.d]\nmodality = "other"\n')
    with pytest.raises(RegistryError, match=r"domain 'd' is defined in .*may only give \[domains.d.sources.<pack>\]"):
        load_registry(shipped, user=user)
    user.write_text(USER_LAYER.replace('adapter = "own/lora"', 'adaptor = "own/lora"'))
    with pytest.raises(
        RegistryError, match=rf"{user}:7: unknown key `adaptor` in \[domains.own.sources.p\]: did you mean `adapter`"
    ):
        load_registry(shipped, user=user)


def test_only_the_edges_load_the_registry():
    """Library code takes the Registry as an argument; only the CLI, the app's start-up and the registry module
    itself load one (so two registries can be served side by side)."""
    from medsynth.paths import PROJECT_ROOT

    package = PROJECT_ROOT / "medsynth"
    loaders = sorted(
        str(path.relative_to(package)) for path in package.rglob("*.py") if "load_registry" in path.read_text()
    )
    outside_the_edges = [path for path in loaders if not path.startswith("cli/")]
    assert outside_the_edges == ["registry.py", "ui/studio.py"] and "cli/__init__.py" in loaders
