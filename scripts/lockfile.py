"""The lock files' fingerprint of their inputs, for scripts/dev.

`python3 scripts/lockfile.py digest` prints a digest of what the locks are made from: the
dependency parts of pyproject.toml (requires-python, dependencies, optional-dependencies, the
build system's requires) and requirements/build.in. `python3 scripts/lockfile.py check FILE...`
exits 1, naming the command to run, when a lock file's recorded digest differs. Other parts of
pyproject.toml (tool settings) do not need a new lock.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARK = "# inputs-sha256: "


def digest(root: Path = ROOT) -> str:
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    inputs = {
        "requires-python": project["project"].get("requires-python"),
        "dependencies": project["project"].get("dependencies", []),
        "optional-dependencies": project["project"].get("optional-dependencies", {}),
        "build-system": project.get("build-system", {}).get("requires", []),
        "build.in": [line.strip() for line in
                     (root / "requirements" / "build.in").read_text(encoding="utf-8").splitlines()
                     if line.strip() and not line.lstrip().startswith("#")],
    }
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def recorded(lock: Path) -> str | None:
    for line in lock.read_text(encoding="utf-8").splitlines():
        if line.startswith(MARK):
            return line[len(MARK):].strip()
    return None


def main(argv: list[str]) -> int:
    if argv[:1] == ["digest"]:
        print(digest())
        return 0
    if argv[:1] == ["check"] and argv[1:]:
        current = digest()
        stale = [name for name in argv[1:]
                 if not Path(name).is_file() or recorded(Path(name)) != current]
        if stale:
            print(f"error: {', '.join(stale)} no longer match(es) the dependencies in "
                  "pyproject.toml (or requirements/build.in).\n"
                  "       Run `scripts/dev lock` and commit the new lock files with the change.",
                  file=sys.stderr)
            return 1
        return 0
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
