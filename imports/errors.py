from core.errors import InvalidInputError


class MappingError(InvalidInputError):
    """A mapping file that cannot be used, with every problem and its line."""

    code = "invalid_mapping"

    def __init__(self, name: str, problems: list[tuple[int, str]]) -> None:
        self.problems = [f"{name}, line {line}: {reason}" for line, reason in problems]
        super().__init__("\n".join(self.problems), loc=["body", "mapping"])


class UnknownMappingError(InvalidInputError):
    code = "unknown_mapping"


class ImportFileError(InvalidInputError):
    """The file as a whole cannot be read: not the format the mapping says, or
    without a column the mapping names."""

    code = "invalid_import_file"
