#!/usr/bin/python3
"""Rewrite the README's "Rules per op" table from the rules in the engine's registry (lib/ops/registry.cpp).

The table is the one answer to "what does each rule do at this op?"; tests/verify/test_rules_table.cpp
fails when the README differs from it. After adding an op's row to the registry, run:

    /usr/bin/python3 tools/readme_rules_table.py
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAYER = {"convolution": "convolution", "fully_connected": "fully connected", "max_pooling": "max pooling",
         "rectification": "rectification", "reshape": "reshape", "none": "none"}


def rows(header_text, registry_text):
    constants = dict(re.findall(r'inline constexpr std::string_view (\w+) =\s*"((?:[^"\\]|\\.)*)";', header_text))
    table = registry_text[registry_text.index("const op_entry entries[]"):]
    table = table[:table.index("};")]
    out = []
    for op, behaviour, layer, text in re.findall(
            r'\{"(\w+)", behaviour::(\w+), deconvnet_layer::(\w+), ("(?:[^"\\]|\\.)*"|\w+)\}', table):
        does = text[1:-1] if text.startswith('"') else constants[text]
        expected = "differs" if layer == "rectification" else "not-covered" if layer == "none" else "identical"
        out.append(f"| {op} | {behaviour} | {LAYER[layer]} | {expected} | {does} |")
    return out


def main():
    header = (ROOT / "include/deepinside/rules.hpp").read_text()
    registry = (ROOT / "lib/ops/registry.cpp").read_text()
    readme_path = ROOT / "README.md"
    lines = readme_path.read_text().split("\n")
    start = lines.index("### Rules per op")
    first = next(i for i in range(start, len(lines)) if lines[i].startswith("| op |"))
    end = next(i for i in range(first, len(lines)) if not lines[i].startswith("| "))
    new = lines[:first + 2] + rows(header, registry) + lines[end:]
    readme_path.write_text("\n".join(new))
    print(f"{len(new) - len(lines):+d} rows; {end - first - 2} before, {len(rows(header, registry))} now", file=sys.stderr)


if __name__ == "__main__":
    main()
