from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from campaigns.definitions import CampaignFolder
from profiles.models import Profile

CAMPAIGN = """\
id: {id}
name: Test campaign
kind: smart
placement:
  website: {{slot: {slot}}}
variants:
  - id: a
    template: |
      <p>Hello {{{{ profile.traits.first_name }}}}</p>
  - id: b
    template: "<p>Hi</p>"
guards:
{guards}
"""


def campaign_text(
    campaign_id: str = "test", *, slot: str = "home", guards: str = "  {}"
) -> str:
    return CAMPAIGN.format(id=campaign_id, slot=slot, guards=guards)


@pytest.fixture
def folder(tmp_path: Path) -> Callable[..., CampaignFolder]:
    """A campaigns folder holding the given files (name -> text)."""

    def make(**files: str) -> CampaignFolder:
        for name, text in files.items():
            (tmp_path / name).write_text(text)
        return CampaignFolder(tmp_path)

    return make


def make_profile(session: Session, **traits: Any) -> Profile:
    profile = Profile(traits={"first_name": "Ada", **traits})
    session.add(profile)
    session.commit()
    return profile
