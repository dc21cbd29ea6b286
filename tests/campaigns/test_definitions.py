"""Campaign files: every mistake named with its file and line."""

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from campaigns.definitions import CampaignFolder, parse, validate_folder
from campaigns.errors import InvalidCampaignError
from core.settings import ROOT
from tests.campaigns.conftest import campaign_text


def problems_of(text: str, folder: Path | None = None) -> list[str]:
    with pytest.raises(InvalidCampaignError) as caught:
        parse(text, name="c.yml", folder=folder)
    return caught.value.problems


def test_parse_broken_yaml_names_the_file_and_line() -> None:
    text = campaign_text().replace("kind: smart", "kind: [smart")

    [problem] = problems_of(text)

    assert problem.startswith("c.yml, line ")
    assert "not valid YAML" in problem


def test_parse_unknown_key_names_its_line_and_the_accepted_keys() -> None:
    text = campaign_text(guards="  max_per_dya: 3")

    [problem] = problems_of(text)

    assert problem.startswith("c.yml, line 13: unknown key 'max_per_dya'")
    assert "accepted: consent, max_per_day, quiet_hours" in problem


def test_parse_unknown_kind_names_the_kinds_there_are() -> None:
    text = campaign_text().replace("kind: smart", "kind: newsletter")

    assert problems_of(text) == [
        "c.yml, line 3: unknown kind 'newsletter'; a campaign is one of: smart, "
        "hybrid, conversational"
    ]


def test_parse_email_placement_needs_a_subject_on_every_variant() -> None:
    text = campaign_text().replace("website: {slot: home}", "email: {}")

    assert problems_of(text) == [
        "c.yml, line 7: variant 'a' needs a subject: the placement is email",
        "c.yml, line 10: variant 'b' needs a subject: the placement is email",
    ]


def test_parse_hybrid_campaign_cannot_fill_a_website_slot() -> None:
    text = hybrid_text().replace("email: {}", "website: {slot: home}")

    assert problems_of(text) == [
        "c.yml, line 7: a hybrid campaign cannot use placement 'website'; it can "
        "use: email, webhook"
    ]


def test_parse_inline_template_syntax_error_names_the_file_line() -> None:
    text = campaign_text().replace("<p>Hello", "{% if %}\n      <p>Hello")

    [problem] = problems_of(text)

    # The template's first line is line 9 of the file.
    assert problem.startswith("c.yml, line 9: template error: ")


def test_parse_template_file_error_names_the_template_file_and_line(
    tmp_path: Path,
) -> None:
    (tmp_path / "t.html").write_text("<p>one</p>\n<p>{{ profile. }}</p>\n")
    text = campaign_text().replace('template: "<p>Hi</p>"', "template_file: t.html")

    [problem] = problems_of(text, tmp_path)

    assert problem.startswith("c.yml, line 11: t.html: line 2: template error")


def test_parse_template_file_outside_the_folder_is_refused(tmp_path: Path) -> None:
    text = campaign_text().replace(
        'template: "<p>Hi</p>"', "template_file: ../../etc/passwd"
    )

    [problem] = problems_of(text, tmp_path / "campaigns")

    assert problem.endswith(
        "template_file '../../etc/passwd' is outside the campaigns folder"
    )


def test_parse_missing_template_file_says_it_does_not_exist(tmp_path: Path) -> None:
    text = campaign_text().replace('template: "<p>Hi</p>"', "template_file: gone.html")

    [problem] = problems_of(text, tmp_path)

    assert problem.endswith(f"template_file 'gone.html' does not exist in {tmp_path}")


def test_parse_unknown_segment_and_cue_are_named_with_accepted_values() -> None:
    text = campaign_text().replace(
        "placement:", "audience:\n  segments: [big_spenders, nobody]\nplacement:"
    )
    text = text.replace("  - id: b\n", "  - id: b\n    cues: [flattery]\n")

    problems = problems_of(text)

    assert problems[0].startswith("c.yml, line 5: unknown segment 'nobody'; defined:")
    assert "big_spenders" in problems[0]
    assert problems[1].startswith("c.yml, line 13: unknown cue 'flattery'; accepted:")


def test_folder_broken_file_does_not_stop_another(
    folder: Callable[..., CampaignFolder],
) -> None:
    loaded = folder(**{"good.yml": campaign_text("good"), "bad.yml": "id: [x"})

    assert [c.id for c in loaded.campaigns()] == ["good"]
    assert loaded.files["bad.yml"].problems[0].startswith("bad.yml, line 1: ")


def test_folder_keeps_the_last_good_version_when_a_file_breaks(
    folder: Callable[..., CampaignFolder], tmp_path: Path
) -> None:
    loaded = folder(**{"c.yml": campaign_text("first")})
    assert [c.id for c in loaded.campaigns()] == ["first"]

    (tmp_path / "c.yml").write_text(campaign_text("second").replace("kind", "knd"))
    os.utime(tmp_path / "c.yml", (1e9, 2e9))  # a new mtime, whatever the clock

    assert [c.id for c in loaded.campaigns()] == ["first"]
    problems = loaded.files["c.yml"].problems
    assert any(p.startswith("c.yml, line 3: unknown key 'knd'") for p in problems)


def test_folder_repeated_campaign_id_is_refused_in_the_later_file(
    folder: Callable[..., CampaignFolder],
) -> None:
    loaded = folder(**{"a.yml": campaign_text("same"), "b.yml": campaign_text("same")})

    assert [c.file for c in loaded.campaigns()] == ["a.yml"]
    assert loaded.files["b.yml"].problems == [
        "b.yml, line 1: campaign id 'same' is already used by a.yml"
    ]


def test_shipped_campaigns_are_valid() -> None:
    valid, problems = validate_folder(ROOT / "shop" / "campaigns")

    assert (valid, problems) == (11, [])


HYBRID = """\
id: cart
name: Cart
kind: hybrid
trigger:
  {trigger}
placement:
  email: {{}}
variants:
  - id: a
    subject: {subject}
    template: "<p>x</p>"
steps:
  - id: first
    send: {{variant: {variant}}}
  - wait: {wait}
  - branch: {{converted: {target}}}
  - {last}: {{}}
"""


def hybrid_text(**overrides: str) -> str:
    values = {
        "trigger": "cart_abandoned: {minutes: 60}", "subject": "Hi",
        "variant": "a", "wait": "1d", "target": "exit", "last": "send",
    } | overrides  # fmt: skip
    return HYBRID.format(**values)


def test_parse_hybrid_campaign_reads_trigger_steps_and_durations() -> None:
    campaign = parse(hybrid_text(), name="c.yml")

    assert campaign.hybrid is not None
    assert campaign.hybrid.trigger.kind == "cart_abandoned"
    assert [type(s).__name__ for s in campaign.hybrid.steps] == [
        "SendStep", "WaitStep", "BranchStep", "SendStep",
    ]  # fmt: skip
    assert campaign.hybrid.steps[1].wait.days == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"trigger": "cart_abandonned: {minutes: 60}"},
         "c.yml, line 4: trigger: Value error, unknown trigger 'cart_abandonned'; "
         "a trigger is one of: cart_abandoned, product_viewed, stage_changed"),
        ({"wait": "2 weeks"},
         "c.yml, line 15: steps.1.wait: Value error, '2 weeks' is not a duration; "
         "write minutes, hours or days such as 30m, 2h, 1d or 1d12h"),
        ({"last": "notify"},
         "c.yml, line 17: steps.3: a step is one of: wait, check, send, branch"),
        ({"subject": "Hi {{ profile.traits.first_name }"},
         "c.yml, line 10: template error: unexpected '}'"),
        ({"variant": "b"}, "c.yml, line 14: unknown variant 'b'; the campaign has: a"),
        ({"target": "first"},
         "c.yml, line 16: converted: step 'first' is not after this one; a branch "
         "jumps forward, so that every journey ends"),
        ({"target": "later"},
         "c.yml, line 16: converted: no step with id 'later'; write next, exit or "
         "one of: first"),
    ],
)  # fmt: skip
def test_parse_hybrid_mistakes_name_their_line(
    overrides: dict[str, str], problem: str
) -> None:
    [found] = problems_of(hybrid_text(**overrides))

    assert found.startswith(problem)
