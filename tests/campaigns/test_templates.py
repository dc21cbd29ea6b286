"""Templates: sandboxed, escaped, and failing with the line that failed."""

import pytest

from campaigns.templates import TemplateRenderError, compile_template, render


def test_render_internals_access_is_refused() -> None:
    compiled = compile_template("{{ ''.__class__.__mro__ }}", where="c.yml")

    with pytest.raises(TemplateRenderError) as caught:
        render(compiled, {})

    assert "unsafe" in caught.value.reason


def test_render_a_list_cannot_be_changed_by_a_template() -> None:
    compiled = compile_template("{{ products.append(1) }}", where="c.yml")

    with pytest.raises(TemplateRenderError):
        render(compiled, {"products": []})


def test_render_trait_with_html_is_escaped() -> None:
    compiled = compile_template("<p>{{ profile.traits.name }}</p>", where="c.yml")

    html = render(compiled, {"profile": {"traits": {"name": "<script>x</script>"}}})

    assert html == "<p>&lt;script&gt;x&lt;/script&gt;</p>"


def test_render_missing_trait_names_the_file_line() -> None:
    source = "<p>Hello</p>\n<p>{{ profile.traits.first_name }}</p>"
    compiled = compile_template(source, where="c.yml", first_line=9)

    with pytest.raises(TemplateRenderError) as caught:
        render(compiled, {"profile": {"traits": {}}})

    assert (caught.value.where, caught.value.line) == ("c.yml", 10)
    assert "first_name" in caught.value.reason


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}"
         "{% endfor %}", "the loops of this template run more than 10,000 steps"),
        ("{% for i in range(200) %}{% for j in range(200) %}{% endfor %}{% endfor %}",
         "the loops of this template run more than 10,000 steps"),
        ("{{ (('a' * 10**4) * 10**4) | length }}",
         "a result of 100,000,000 characters or items is more than 100,000"),
        ("{{ 2 ** 1000 }}", "an exponent of 1000 is more than 64"),
        ("{% for i in range(5000) %}{{ 'y' * 50 }}{% endfor %}",
         "the message is longer than 200,000 characters"),
    ],
)  # fmt: skip
def test_a_template_that_would_run_away_fails_with_its_line(
    source: str, reason: str
) -> None:
    compiled = compile_template(source, where="c.yml", first_line=7)

    with pytest.raises(TemplateRenderError) as failed:
        render(compiled, {})

    assert str(failed.value) == f"c.yml, line 7: {reason}"


def test_each_message_has_its_own_budget() -> None:
    compiled = compile_template(
        "{% for i in range(6000) %}{% endfor %}ok", where="c.yml"
    )

    assert [render(compiled, {}) for _ in range(3)] == ["ok", "ok", "ok"]
