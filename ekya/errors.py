"""The one exception type for bad user input (configs, traces, datasets, checkpoints).

Entry points catch :class:`EkyaError`, print its message without a traceback and exit
non-zero. Raise it with a message that names the bad value (file, row, column) and what
is valid.
"""


class EkyaError(Exception):
    """Bad input from the user: an unknown name, an impossible number, missing or corrupt data."""
