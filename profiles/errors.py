from core.errors import ConflictError, InvalidInputError, NotFoundError


class ProfileNotFoundError(NotFoundError):
    code = "profile_not_found"


class InvalidIdentityError(InvalidInputError):
    code = "invalid_identity"


class ConcurrentIdentityError(Exception):
    """Another writer attached one of these identities to a profile while we were
    resolving them; the whole event must be applied again to see that profile."""


class MatchSuggestionNotFoundError(NotFoundError):
    code = "match_suggestion_not_found"


class MatchSuggestionDecidedError(ConflictError):
    code = "match_suggestion_decided"


class ProfileMergedError(ConflictError):
    code = "profile_merged"


class MergeNotFoundError(NotFoundError):
    code = "merge_not_found"
