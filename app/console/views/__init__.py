"""Console pages, one module per page; each exposes ``routes(deps) -> [(uri_template, resource[, suffix])]``."""
