"""Lambda entry points: each adapts its event to a service call.

Importing one is a sandbox's cold start, and all that the import builds (modules, botocore's and
Powertools' objects, pydantic's schemas) lives as long as the sandbox: the cyclic collector would
walk it again and again and free nothing (a seventh of the API function's import). So it is
paused from here until the handler's module ends with ``imported()``, which moves what was built
out of the collector's generations and resumes it.
"""

import gc

gc.disable()


def imported() -> None:
    gc.freeze()
    gc.enable()
