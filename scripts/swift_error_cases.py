#!/usr/bin/env python3
"""Rewrites the cases of the error enums in a uniffi-generated Swift file to lowerCamel.

uniffi 0.32's ErrorTemplate.swift names error cases with `class_name` (`case KeyStorage(...)`,
`.Gateway(...)`), while Swift's convention, and uniffi's own plain enums, use lowerCamel
(`.keyStorage`, `.gateway`). scripts/bindings.sh runs this on the generated Swift right after
uniffi-bindgen, so apps write `catch WalletError.gateway(let code, ...)`.

The rewrite is limited and deterministic:
  * every `enum NAME: Swift.Error ...` declaration: its `case Upper` lines;
  * in `struct FfiConverterTypeNAME` of that enum: `return .Upper`, `case .Upper` and
    `case let .Upper` (the read and write switches).
A case name that is a Swift keyword (`internal`) is written in backticks. Nothing else in the
file changes. Exits 1 (and writes nothing) when the file has no error enum, or when a case
found in a declaration is not found in its converter (the template changed: update this).

Usage: swift_error_cases.py FILE.swift   (rewrites FILE.swift in place)
"""
import re
import sys

# Swift keywords that must be quoted as identifiers (a subset of uniffi's list that a
# lowerCamel case name can produce).
KEYWORDS = {
    "associatedtype", "class", "deinit", "enum", "extension", "fileprivate", "func", "import",
    "init", "inout", "internal", "let", "open", "operator", "private", "precedencegroup",
    "protocol", "public", "rethrows", "static", "struct", "subscript", "typealias", "var",
    "break", "case", "catch", "continue", "default", "defer", "do", "else", "fallthrough",
    "for", "guard", "if", "in", "repeat", "return", "throw", "switch", "where", "while", "as",
    "await", "false", "is", "nil", "self", "super", "throws", "true", "try",
}

ERROR_ENUM = re.compile(r"^enum (\w+): Swift\.Error\b.*\{$", re.M)
DECLARED_CASE = re.compile(r"^(    case )([A-Z]\w*)\b", re.M)


def lower_camel(name):
    """`KeyStorage` -> `keyStorage`, `HTTPError` -> `httpError`, `Tls` -> `tls`."""
    upper = len(name) - len(name.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    if upper > 1 and upper < len(name):
        upper -= 1  # keep the capital that starts the next word
    out = name[:upper].lower() + name[upper:]
    return f"`{out}`" if out in KEYWORDS else out


def block_end(src, start):
    """Index just past the first line that is exactly `}` at or after `start`."""
    end = src.find("\n}\n", start)
    if end < 0:
        raise ValueError("unterminated block")
    return end + 3


def rewrite(src):
    enums = ERROR_ENUM.findall(src)
    if not enums:
        raise ValueError("no `enum X: Swift.Error` in the file")
    for name in enums:
        decl = ERROR_ENUM.search(src, 0)
        while decl.group(1) != name:
            decl = ERROR_ENUM.search(src, decl.end())
        end = block_end(src, decl.start())
        body = src[decl.start():end]
        cases = DECLARED_CASE.findall(body)
        if not cases:
            raise ValueError(f"enum {name} declares no UpperCamel case")
        names = {case for _, case in cases}
        body = DECLARED_CASE.sub(lambda m: m.group(1) + lower_camel(m.group(2)), body)
        src = src[:decl.start()] + body + src[end:]

        conv = re.search(rf"^public struct FfiConverterType{name}: FfiConverterRustBuffer \{{$",
                         src, re.M)
        if conv is None:
            raise ValueError(f"no FfiConverterType{name} for error enum {name}")
        end = block_end(src, conv.start())
        body = src[conv.start():end]
        used = set()

        def use(m):
            if m.group(2) not in names:
                return m.group(0)
            used.add(m.group(2))
            return m.group(1) + lower_camel(m.group(2))

        body = re.sub(r"(\breturn \.|\bcase \.|\bcase let \.)([A-Z]\w*)\b", use, body)
        if used != names:
            missing = ", ".join(sorted(names - used))
            raise ValueError(f"FfiConverterType{name} does not use case(s) {missing}")
        src = src[:conv.start()] + body + src[end:]
    return src


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    path = sys.argv[1]
    with open(path, encoding="utf-8") as f:
        src = f.read()
    try:
        out = rewrite(src)
    except ValueError as e:
        print(f"swift_error_cases.py: {path}: {e}", file=sys.stderr)
        sys.exit(1)
    with open(path, "w", encoding="utf-8") as f:
        f.write(out)


if __name__ == "__main__":
    main()
