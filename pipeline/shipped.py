"""Where the files shipped with auditveil are: the repository's ``schemas/`` folder (policies,
jurisdiction rules, the analysts' schema and example queries).

From a source checkout (an editable install) that is ``schemas/`` beside ``pipeline/``. A wheel
installs the same files as data under ``<prefix>/share/auditveil/schemas`` (see
``pyproject.toml``), where ``<prefix>`` is the virtual environment or Python installation.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline.errors import ConfigError

_SOURCE_TREE = Path(__file__).resolve().parents[1] / "schemas"
_INSTALLED = ("share", "auditveil", "schemas")


def schemas_dir() -> Path:
    """The shipped ``schemas/`` folder; a :class:`ConfigError` if this installation has none."""
    for candidate in (_SOURCE_TREE, Path(sys.prefix).joinpath(*_INSTALLED),
                      Path(sys.base_prefix).joinpath(*_INSTALLED)):
        if (candidate / "policy").is_dir():
            return candidate
    raise ConfigError(
        "auditveil's shipped schemas/ folder was not found (neither beside the package nor under "
        f"{'/'.join(('<prefix>', *_INSTALLED))}): reinstall auditveil, or give pipeline.policy_dir "
        "and storage.jurisdiction_file explicitly"
    )
