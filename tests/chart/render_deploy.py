"""Writes deploy/signgate.yaml from charts/signgate (scripts/render-deploy), or with --check
fails when the file is out of date."""

from __future__ import annotations

import sys

from chartlib import DEPLOY, ROOT, deploy_manifest


def main(argv: list[str]) -> int:
    text = deploy_manifest()
    rel = DEPLOY.relative_to(ROOT)
    if "--check" in argv:
        if not DEPLOY.exists() or DEPLOY.read_text() != text:
            print(f"{rel} is out of date: run scripts/render-deploy", file=sys.stderr)
            return 1
        print(f"{rel} is up to date")
        return 0
    DEPLOY.write_text(text)
    print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
