from core.errors import NotFoundError, UnavailableError


class SegmentNotFoundError(NotFoundError):
    code = "segment_not_found"


class SegmentsUnavailableError(UnavailableError):
    """The segment file has had mistakes since the process started: there is no
    good version to answer from."""

    code = "segments_unavailable"
