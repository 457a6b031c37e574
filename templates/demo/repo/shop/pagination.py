"""Split a list of orders into pages."""


def paginate(items, page, per_page=10):
    """Return the items on `page` (pages start at 1)."""
    if page < 1 or per_page < 1:
        raise ValueError("page and per_page must be positive")
    start = page * per_page
    return items[start:start + per_page]


def page_count(items, per_page=10):
    """How many pages `items` fill."""
    return (len(items) + per_page - 1) // per_page
