#!/usr/bin/env python3
"""extend_spec.py - add Stripe API operations (and the schemas they need) to the trimmed
OpenAPI spec the tests serve with Prism, taken from Stripe's published spec, never by hand.

    extend_spec.py --full spec3.yaml|spec3.json --in openapi-lookup-strict.json \
        --out openapi-lookup-strict.json [--keep-default-responses] [--op 'GET /v1/invoices' ...]

--full is Stripe's published spec (github stripe/openapi, openapi/spec3.json or .yaml, MIT
licence: see LICENSE next to the generated files; use the copy whose info.version matches
the trimmed spec's, 2023-08-16 for the files here: openapi/spec3.yaml of 2023-09-12).
Trimming follows the existing files: an expandable field (anyOf string-or-object with
x-expansionResources) keeps only its string (id) form, with its description and nullable;
without --keep-default-responses the `default` (error) responses are dropped, so that Prism
answers an invalid request with 422. Schemas already in --in are kept as they are; missing
ones referenced by the new operations are added (transitively). A $ref that would still close
a cycle becomes {"type": "object"} and is reported on stderr. Deterministic: the same inputs
give the same bytes, in the trimmed files' own layout (indent 1, keys in spec order).

Default operations (issue #11 and #13): GET /v1/invoices, GET /v1/invoices/{invoice},
GET /v1/charges/search, GET /v1/events, GET /v1/events/{id}.
"""
import argparse
import copy
import json
import sys

DEFAULT_OPS = ["GET /v1/invoices", "GET /v1/invoices/{invoice}", "GET /v1/charges/search",
               "GET /v1/events", "GET /v1/events/{id}"]
REF = "#/components/schemas/"


def load(path):
    with open(path, encoding="utf-8") as f:
        if path.endswith((".yaml", ".yml")):
            import yaml  # python3-yaml
            return yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        return json.load(f)


def collapse(node):
    """Expandable fields -> their id (string) form, recursively."""
    if isinstance(node, list):
        return [collapse(x) for x in node]
    if not isinstance(node, dict):
        return node
    if "x-expansionResources" in node and isinstance(node.get("anyOf"), list):
        first = node["anyOf"][0]
        if isinstance(first, dict) and first.get("type") == "string":
            out = dict(first)
            for k in ("description", "nullable"):
                if k in node:
                    out[k] = node[k]
            return out
    return {k: collapse(v) for k, v in node.items()}


def refs(node, acc):
    if isinstance(node, dict):
        r = node.get("$ref")
        if isinstance(r, str) and r.startswith(REF):
            acc.append(r[len(REF):])
        for v in node.values():
            refs(v, acc)
    elif isinstance(node, list):
        for v in node:
            refs(v, acc)
    return acc


def break_cycles(schemas, names):
    """Replace $refs that close a cycle (DFS over all schemas) by a plain object."""
    broken = []
    state = {}

    def visit(name):
        state[name] = 1
        node = schemas.get(name)

        def walk(n, where):
            if isinstance(n, dict):
                r = n.get("$ref")
                if isinstance(r, str) and r.startswith(REF):
                    t = r[len(REF):]
                    if state.get(t) == 1 and name in names:
                        desc = n.get("description")
                        n.clear()
                        n["type"] = "object"
                        if desc:
                            n["description"] = desc
                        broken.append("%s -> %s" % (name, t))
                        return
                    if t not in state and t in schemas:
                        visit(t)
                    return
                for k in sorted(n):
                    walk(n[k], where)
            elif isinstance(n, list):
                for x in n:
                    walk(x, where)
        walk(node, name)
        state[name] = 2
    for name in sorted(schemas):
        if name not in state:
            visit(name)
    return broken


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", required=True)
    ap.add_argument("--in", dest="inp", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--keep-default-responses", action="store_true")
    ap.add_argument("--op", action="append", help="METHOD /path (repeatable)")
    a = ap.parse_args(argv)
    full = load(a.full)
    trimmed = load(a.inp)
    if full["info"]["version"] != trimmed["info"]["version"]:
        sys.stderr.write("warning: full spec is API %s, trimmed is %s\n"
                         % (full["info"]["version"], trimmed["info"]["version"]))
    schemas = trimmed["components"]["schemas"]
    added = []
    todo = []
    for op in a.op or DEFAULT_OPS:
        method, path = op.split(" ", 1)
        src = full["paths"].get(path, {}).get(method.lower())
        if src is None:
            sys.exit("no %s in the full spec" % op)
        src = collapse(copy.deepcopy(src))
        if not a.keep_default_responses:
            src.get("responses", {}).pop("default", None)
        trimmed["paths"].setdefault(path, {})[method.lower()] = src
        todo += refs(src, [])
    while todo:
        name = todo.pop()
        if name in schemas:
            continue
        if name not in full["components"]["schemas"]:
            sys.exit("schema %s is not in the full spec" % name)
        schemas[name] = collapse(copy.deepcopy(full["components"]["schemas"][name]))
        added.append(name)
        todo += refs(schemas[name], [])
    broken = break_cycles(schemas, set(added))
    for b in broken:
        sys.stderr.write("cycle broken: %s\n" % b)
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(trimmed, f, indent=1)  # the trimmed files' own layout
    sys.stderr.write("%d operation(s), %d schema(s) added: %s\n"
                     % (len(a.op or DEFAULT_OPS), len(added), ", ".join(sorted(added))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
