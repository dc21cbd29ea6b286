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
