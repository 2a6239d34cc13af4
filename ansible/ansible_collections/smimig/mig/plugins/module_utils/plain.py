"""smimig's models as plain data for Ansible's JSON (shared by the collection's modules)."""

from __future__ import annotations


def plain(value):
    """attrs models to dicts, tuples to lists, recursively."""
    import attrs

    if attrs.has(type(value)):
        return {key: plain(item) for key, item in attrs.asdict(value, recurse=False).items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value
