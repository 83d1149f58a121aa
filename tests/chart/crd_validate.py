#!/usr/bin/env python3
"""Validates custom resources in rendered YAML against their CRDs, offline.

Usage: crd_validate.py --crd FILE... --expect KIND... RENDERED.yaml...

Each object whose apiVersion/kind a given CRD serves is checked against
that version's openAPIV3Schema with unknown fields refused, as the API
server's strict field validation does (a structural schema only prunes
them): every object schema with properties and no
x-kubernetes-preserve-unknown-fields gets additionalProperties: false.
To show the check is strict, a copy of each object with an unknown field
in spec must be refused too. Every --expect kind must have been seen.
Needs PyYAML and jsonschema (the k8s venv of scripts/k8s-tools.sh).
"""
import argparse
import copy
import sys

import jsonschema
import yaml


def strict(schema):
    """A copy of an OpenAPI v3 structural schema refusing unknown fields."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if (schema.get("type") == "object" and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if schema.get("nullable"):
        t = out.get("type")
        if isinstance(t, str):
            out["type"] = [t, "null"]
    return out


def load_crds(paths):
    """(apiVersion, kind) -> strict validator."""
    out = {}
    for p in paths:
        with open(p) as f:
            for crd in yaml.safe_load_all(f):
                if not crd or crd.get("kind") != "CustomResourceDefinition":
                    continue
                group = crd["spec"]["group"]
                kind = crd["spec"]["names"]["kind"]
                for v in crd["spec"]["versions"]:
                    if not v.get("served"):
                        continue
                    schema = strict(v["schema"]["openAPIV3Schema"])
                    # metadata is the API server's to check (ObjectMeta).
                    schema["properties"]["metadata"] = {"type": "object"}
                    out[(f"{group}/{v['name']}", kind)] = jsonschema.Draft7Validator(schema)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crd", action="append", required=True)
    ap.add_argument("--expect", action="append", default=[])
    ap.add_argument("rendered", nargs="+")
    a = ap.parse_args()
    crds = load_crds(a.crd)
    seen, bad = set(), 0
    for path in a.rendered:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        for d in docs:
            key = (d.get("apiVersion"), d.get("kind"))
            val = crds.get(key)
            if val is None:
                continue
            name = f"{path}: {d['kind']}/{d['metadata']['name']}"
            errs = sorted(val.iter_errors(d), key=lambda e: list(e.path))
            for e in errs:
                print(f"{name}: {'.'.join(map(str, e.path)) or '<root>'}: {e.message}")
            bad += bool(errs)
            mutant = copy.deepcopy(d)
            mutant.setdefault("spec", {})["unknownFieldForTheTest"] = 1
            if val.is_valid(mutant):
                print(f"{name}: an unknown spec field was accepted: the check is not strict")
                bad += 1
            if not errs:
                print(f"ok {name} against its CRD")
            seen.add(d["kind"])
    for k in a.expect:
        if k not in seen:
            print(f"no {k} was rendered")
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
