import pytest
from transformers import AutoTokenizer

from medsynth.generation.prompts import PromptError, build_prompt, check_prompt_length, class_prompt
from medsynth.registry import load_registry
from tests.support.tiny_pack import clip_tokenizer_files, minilm_folder


@pytest.fixture(scope="module")
def derm():
    return load_registry().get_domain("dermatology")


def test_structured_fields_become_a_prompt(derm):
    prompt = build_prompt(derm, "mel", {"site": "Back", "age": "63", "sex": "female"})
    assert prompt == "dermoscopy image of melanoma, on the back, in a 63-year-old patient, female patient"


def test_findings_extend_a_class_prompt_or_replace_it(derm):
    extended = build_prompt(derm, "mel", findings="  blue-white veil\n and irregular streaks ")
    assert extended == "dermoscopy image of melanoma, blue-white veil and irregular streaks"
    # findings alone are led by the chosen domain's modality, unless they name it themselves
    assert build_prompt(derm, None, findings="irregular pigmented lesion") == "dermoscopy, irregular pigmented lesion"
    assert build_prompt(derm, None, findings="Dermoscopic view of a pink nodule") == "Dermoscopic view of a pink nodule"
    assert class_prompt(derm, "df") == "dermoscopy image of dermatofibroma"


def test_findings_that_name_another_modality_are_warned_about_and_the_domain_still_decides():
    from medsynth.generation.prompts import foreign_modality_warning

    registry = load_registry()
    chest = registry.get_domain("chest_xray")
    findings = "bilateral peripheral ground-glass opacities"
    assert build_prompt(chest, None, findings=findings) == f"frontal chest radiograph, {findings}"
    assert foreign_modality_warning(registry.domains.values(), chest, findings) is None
    warning = foreign_modality_warning(registry.domains.values(), chest, "fundus photograph with drusen at the macula")
    assert "Ophthalmology (colour fundus photograph)" in warning and "frontal chest radiograph images" in warning
    assert foreign_modality_warning(registry.domains.values(), chest, "a mole on the back") is not None  # skin words
    assert foreign_modality_warning(registry.domains.values(), chest, "left lower lobe consolidation, lung") is None
    assert foreign_modality_warning(registry.domains.values(), chest, None) is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "prompt is empty"),
        ({"findings": "   "}, "prompt is empty"),
        ({"findings": 42}, "must be text"),
        ({"findings": "!!! 123"}, "must contain words"),
        ({"findings": "x" * 3000}, "limit is 2000"),
        ({"label": "zz"}, "unknown class 'zz'"),
        ({"label": "mel", "attributes": {"site": "moon"}}, "site must be one of"),
        ({"label": "mel", "attributes": {"age": "200"}}, "age must be between 1 and 100"),
        ({"label": "mel", "attributes": {"age": "old"}}, "age must be a whole number"),
        ({"label": "mel", "attributes": {"eye": "left"}}, "unknown attribute 'eye'"),
        ({"attributes": {"site": "back"}, "findings": "a lesion"}, "attributes need a class"),
    ],
)
def test_bad_prompt_input_gives_clear_errors(derm, kwargs, message):
    with pytest.raises(PromptError, match=message):
        build_prompt(derm, **kwargs)


def test_long_prompt_warning_quotes_what_bert_would_cut():
    tokenizer = AutoTokenizer.from_pretrained(minilm_folder(), model_max_length=16)
    short = check_prompt_length("the image of a lesion", tokenizer)
    assert short.warning is None and short.n_tokens == len(tokenizer("the image of a lesion")["input_ids"])
    text = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"
    check = check_prompt_length(text, tokenizer)
    assert check.n_tokens == 18 and check.max_tokens == 16
    assert check.cut_text == "fifteen sixteen"  # 14 words fit between [CLS] and [SEP]
    assert '"fifteen sixteen"' in check.warning


def test_long_prompt_warning_with_the_sd15_clip_tokenizer(tmp_path):
    from transformers import CLIPTokenizer

    files = clip_tokenizer_files(tmp_path)
    tokenizer = CLIPTokenizer(str(files / "vocab.json"), str(files / "merges.txt"), model_max_length=77)
    check = check_prompt_length("lung " * 80, tokenizer)
    assert check.n_tokens == 82 and check.cut_text == "lung lung lung lung lung"
    with pytest.raises(PromptError):
        check_prompt_length("  ", tokenizer)
