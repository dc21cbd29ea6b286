from core.errors import InvalidInputError
from core.yaml_files import YamlFileError


class MappingError(YamlFileError):
    """A mapping file that cannot be used, with every problem and its line."""

    code = "invalid_mapping"

    def __init__(self, name: str, problems: list[tuple[int, str]]) -> None:
        super().__init__(name, problems, loc=["body", "mapping"])


class UnknownMappingError(InvalidInputError):
    code = "unknown_mapping"


class ImportFileError(InvalidInputError):
    """The file as a whole cannot be read: not the format the mapping says, or
    without a column the mapping names."""

    code = "invalid_import_file"
