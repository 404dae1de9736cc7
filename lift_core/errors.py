"""The one exception type that reaches a user as a sentence instead of a traceback."""


class LiftError(Exception):
    """Bad input or an impossible request; the message says what is wrong and how to fix it.

    The command line prints it as ``error: <message>`` and exits with status 2; the app shows it
    in the page. Anything else that escapes is a bug in LIFT Studio, not the user's fault.
    """
