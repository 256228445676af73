#!/usr/bin/env python3
"""Trim GitHub's OpenAPI description to the operations specbot uses.

Owns: the regeneration of tests/fixtures/github-openapi/api.github.com.trimmed.json.

Reads the full description (gzip), keeps only the operations listed in
tests/fixtures/github-openapi/operations.txt (one `METHOD /path/{template}` per
line), plus every `#/components/...` object they reference, transitively, and
writes plain JSON with sorted keys, so that the output is deterministic.

Usage (from the repository root; stdlib only):
    python3 scripts/trim-openapi.py [FULL.json.gz] [OUT.json]
The default input is $GITHUB_OPENAPI_GZ when set, else shared/fixtures/github-openapi/
api.github.com.json.gz found beside the checkout (../shared or ../../shared).
"""

import gzip
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "github-openapi")
GZ = os.path.join("shared", "fixtures", "github-openapi", "api.github.com.json.gz")
CANDIDATES = [os.path.join(ROOT, "..", GZ), os.path.join(ROOT, "..", "..", GZ), os.path.join("/work", GZ)]


def default_input():
    if os.environ.get("GITHUB_OPENAPI_GZ"):
        return os.environ["GITHUB_OPENAPI_GZ"]
    for candidate in CANDIDATES:
        if os.path.exists(candidate):
            return candidate
    raise SystemExit("full description not found; pass its path or set GITHUB_OPENAPI_GZ")
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def read_operations(path):
    ops = []
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            method, route = line.split(None, 1)
            ops.append((method.lower(), route.strip()))
    return ops


def refs_in(node, out):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            out.add(ref)
        for value in node.values():
            refs_in(value, out)
    elif isinstance(node, list):
        for value in node:
            refs_in(value, out)


def resolve(doc, ref):
    if not ref.startswith("#/"):
        raise SystemExit(f"external $ref not supported: {ref}")
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[part]
    return node


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else default_input()
    dst = sys.argv[2] if len(sys.argv) > 2 else os.path.join(FIXTURES, "api.github.com.trimmed.json")
    with gzip.open(src, "rt", encoding="utf-8") as f:
        full = json.load(f)

    wanted = read_operations(os.path.join(FIXTURES, "operations.txt"))
    paths = {}
    missing = []
    for method, route in wanted:
        item = full["paths"].get(route)
        if item is None or method not in item:
            missing.append(f"{method.upper()} {route}")
            continue
        kept = paths.setdefault(route, {k: v for k, v in item.items() if k not in METHODS})
        kept[method] = item[method]
    if missing:
        raise SystemExit("operations not in the description:\n  " + "\n  ".join(missing))

    # Transitive closure of component references.
    seen = set()
    todo = set()
    refs_in(paths, todo)
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        refs_in(resolve(full, ref), todo)

    components = {}
    for ref in sorted(seen):
        parts = ref[2:].split("/")
        if parts[0] != "components" or len(parts) != 3:
            raise SystemExit(f"unexpected $ref shape: {ref}")
        components.setdefault(parts[1], {})[parts[2]] = resolve(full, ref)

    out = {
        "openapi": full["openapi"],
        "info": full["info"],
        "servers": full.get("servers", []),
        "x-trimmed": {
            "source": "npm @octokit/openapi 23.0.2, generated/api.github.com.json",
            "by": "scripts/trim-openapi.py",
            "operations": len(wanted),
        },
        "paths": paths,
        "components": components,
    }
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {dst}: {len(wanted)} operations, {len(seen)} components")


if __name__ == "__main__":
    main()
