"""The one exception type for bad user input (a scene, a config, a file, a grid)."""


class CkmsimError(ValueError):
    """Raised for input a user can fix; the message names what was wrong and where.

    The CLI prints the message alone (no traceback); library callers can catch it like a ``ValueError``.
    """
