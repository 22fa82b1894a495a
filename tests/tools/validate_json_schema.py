"""Validate JSON documents against a JSON Schema with the reference Python implementation
(jsonschema), independently of wsstack's own code.

usage: validate_json_schema.py SCHEMA DOCUMENT...
Prints one line per document: "ok PATH" or "invalid PATH: <first errors>"; exits 1 if any is invalid.
Documents ending in .yaml/.yml are read as YAML (PyYAML comes with moto).
"""
import json
import sys

import jsonschema


def load(path):
    with open(path, encoding="utf-8") as handle:
        if path.endswith((".yaml", ".yml")):
            import yaml

            return yaml.safe_load(handle)
        return json.load(handle)


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    schema = load(argv[1])
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    invalid = 0
    for path in argv[2:]:
        try:
            document = load(path)
        except Exception as error:  # a document that does not parse is invalid, not a crash
            print(f"invalid {path}: does not parse: {error}")
            invalid += 1
            continue
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
        if errors:
            invalid += 1
            details = "; ".join(
                f"/{'/'.join(str(p) for p in e.absolute_path)}: {e.message[:200]}" for e in errors[:5]
            )
            print(f"invalid {path}: {details}")
        else:
            print(f"ok {path}")
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
