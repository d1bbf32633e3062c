"""What the reference implementation (pm4py) and the OCEL 2.0 schema see in
cxstream's exports. Prints one JSON object; tests/mining.rs compares it
with the topic and with `cxstream mine dfg`.

usage: process_mining.py XES OCEL SCHEMA
"""
import json
import sys
import warnings

warnings.filterwarnings("ignore")

import jsonschema  # noqa: E402
import pm4py  # noqa: E402


def xes_facts(path):
    df = pm4py.read_xes(path)
    transitions = df["lifecycle:transition"].value_counts().to_dict()
    complete = df[df["lifecycle:transition"] == "complete"]
    dfg, start, end = pm4py.discover_dfg(complete)
    return {
        "cases": int(df["case:concept:name"].nunique()),
        "events": {k: int(v) for k, v in transitions.items()},
        "dfg": sorted([a, b, int(n)] for (a, b), n in dfg.items()),
        "start": {k: int(v) for k, v in start.items()},
        "end": {k: int(v) for k, v in end.items()},
    }


def ocel_facts(path):
    ocel = pm4py.read_ocel2_json(path)
    types = ocel.objects["ocel:type"].value_counts().to_dict()
    return {
        "events": int(len(ocel.events)),
        "objects": int(len(ocel.objects)),
        "relations": int(len(ocel.relations)),
        "o2o": int(len(ocel.o2o)),
        "object_types": {k: int(v) for k, v in types.items()},
        "qualifiers": {
            k: int(v) for k, v in ocel.relations["ocel:qualifier"].value_counts().to_dict().items()
        },
    }


def schema_errors(path, schema_path):
    with open(schema_path) as f:
        schema = json.load(f)
    with open(path) as f:
        doc = json.load(f)
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = []
    for e in validator.iter_errors(doc):
        errors.append(f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message[:200]}")
        if len(errors) >= 5:
            break
    return errors


def main():
    xes, ocel, schema = sys.argv[1:4]
    print(json.dumps({
        "xes": xes_facts(xes),
        "ocel": ocel_facts(ocel),
        "schema_errors": schema_errors(ocel, schema),
    }))


if __name__ == "__main__":
    main()
