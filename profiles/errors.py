from core.errors import InvalidInputError, NotFoundError


class ProfileNotFoundError(NotFoundError):
    code = "profile_not_found"


class InvalidIdentityError(InvalidInputError):
    code = "invalid_identity"
