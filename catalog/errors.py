from core.errors import NotFoundError


class ProductNotFoundError(NotFoundError):
    code = "product_not_found"
