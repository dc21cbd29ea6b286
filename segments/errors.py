from core.errors import NotFoundError


class SegmentNotFoundError(NotFoundError):
    code = "segment_not_found"
