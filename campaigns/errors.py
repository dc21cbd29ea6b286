from core.errors import NotFoundError
from core.yaml_files import YamlFileError


class InvalidCampaignError(YamlFileError):
    """A campaign file with mistakes: each with its file and line."""

    code = "invalid_campaign"


class CampaignNotFoundError(NotFoundError):
    code = "campaign_not_found"
