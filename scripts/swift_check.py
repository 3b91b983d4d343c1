#!/usr/bin/env python3
"""Static check of the Swift side of the wallet core where no Swift toolchain exists.

Checks, each counted as one "passed" or "failed":

1. syntax (one per file): tree-sitter-swift parses the file; every ERROR/MISSING node is
   reported as file:line:col. A few known gaps of the grammar on VALID Swift are rewritten
   first (see NORMALISATIONS below; --raw turns that off).
2. symbols (--header H --lib L): every C function the Swift calls (uniffi_*/ffi_*) is
   declared in the generated header H, and every function H declares is exported by L.
3. abi (--lib L.so): replays the generated Swift's load-time check through ctypes: the
   contract version and every API checksum written into the Swift must equal what L returns
   (the bindings were generated from this very build of the library).
4. modulemap (--modulemap M): M declares the C module the Swift imports and names a header
   that exists beside it.
5. api (--api GENERATED.swift, one check over all other files): the hand-written Swift uses
   the generated API as declared: classes conforming to a generated protocol implement every
   requirement with the same name, argument labels, parameter and return types (and no
   async/throws the requirement lacks); calls of generated initialisers, free functions,
   static functions and Wallet/EventStream methods use existing argument labels in order,
   leave out only defaulted parameters, and are marked `try`/`await` when the callee throws
   or is async. A receiver known to hold a generated object (a parameter or property typed
   Wallet/EventStream, `let w = try Wallet.open(...)`, `let h = try w.startEvents(...)`,
   `guard let w = w`) must have the called method (or get it from a hand-written extension):
   a method renamed or removed in the core is reported. Other method calls are matched by
   name: one that fits a function the hand-written files declare is taken for that; a
   same-named method of another type (e.g. of Foundation) with other labels would be reported.
6. error cases (with --api GENERATED.swift): the generated error enums (`enum X: Swift.Error`)
   declare and convert only lowerCamel cases (scripts/bindings.sh renames uniffi's UpperCamel
   error cases), and no other file names an UpperCamel case as `WalletError.Gateway`.
7. strings (--strings CATALOG.xcstrings): every localization key the Swift files use in
   `String(localized: "key", ...)` exists in the strings catalog with an English text, and
   every key of the catalog is used.

Not checked (needs a Swift compiler): types of expressions, overload resolution, property
names, imports, availability, concurrency diagnostics.

Exit code 0 = every check passed, 1 = a check failed, 2 = bad usage.
Last line: "swift-check: N passed, N failed".
"""
import argparse
import ctypes
import os
import re
import subprocess
import sys

import tree_sitter_swift
from tree_sitter import Language, Parser

LANG = Language(tree_sitter_swift.language())

# NORMALISATIONS: known false positives of tree-sitter-swift 0.7.4 on valid Swift that uniffi
# 0.32 emits. Each rewrite keeps the byte length and the line breaks, so reported positions stay
# exact, and each keeps the code around it a valid parse of the same shape.
#  1. Compiler directives (`#if swift(>=5.8)` / `#endif` around a lone `@_documentation(...)`
#     attribute, `#if compiler(>=6)` around `extension X: Sendable {}`): the grammar parses
#     directives as extras, so the attribute dangles. Whole `#if/#elseif/#else/#endif` lines are
#     blanked: both branches stay, which is fine for a parser.
#  2. The empty-tuple expression `()` as a closure body or returned value (`{ () }`,
#     `return ()`): rewritten to `[]`, another expression of the same length.
DIRECTIVE = re.compile(rb"^[ \t]*#(?:if|elseif|else|endif)\b[^\n]*$", re.M)
EMPTY_TUPLE = re.compile(rb"(?<=\{ )\(\)(?= \})|(?<=return )\(\)")


def normalise(src: bytes) -> bytes:
    """Applies the NORMALISATIONS (length- and line-preserving)."""
    src = DIRECTIVE.sub(lambda m: b" " * len(m.group(0)), src)
    return EMPTY_TUPLE.sub(b"[]", src)


def parse(path, raw=False):
    """Returns (source bytes as parsed, tree)."""
    with open(path, "rb") as f:
        src = f.read()
    if not raw:
        src = normalise(src)
    return src, Parser(LANG).parse(src)


def syntax_errors(path, raw=False):
    """Every ERROR or MISSING node of the file, as 'file:line:col: ...' lines."""
    src, tree = parse(path, raw)
    errs = []
    if not tree.root_node.has_error:
        return errs
    stack = [tree.root_node]
    while stack:
        n = stack.pop()
        if n.is_error or n.is_missing:
            line, col = n.start_point
            kind = "missing " + n.type if n.is_missing else "syntax error"
            snippet = src[n.start_byte:n.end_byte][:60].decode("utf-8", "replace")
            errs.append(f"{path}:{line + 1}:{col + 1}: {kind}: {snippet!r}")
            continue  # the children of an error node are not reported again
        stack.extend(reversed(n.children))
    return sorted(errs, key=lambda e: [int(x) if x.isdigit() else x for x in e.split(":")[1:3]])


# ---------------------------------------------------------------------------------------------
# 2-4: symbols, ABI, modulemap

FFI_CALL = re.compile(r"\b((?:uniffi|ffi)_[A-Za-z0-9_]+)\s*\(")


def symbol_errors(swift_files, header, lib):
    """C symbols called from Swift must be declared in the header and exported by the lib."""
    called = set()
    for f in swift_files:
        with open(f, encoding="utf-8") as fh:
            called |= set(FFI_CALL.findall(fh.read()))
    with open(header, encoding="utf-8") as fh:
        declared = set(FFI_CALL.findall(fh.read()))
    nm = subprocess.run(["nm", "-D" if lib.endswith(".so") else "-g", "--defined-only", lib],
                        capture_output=True, text=True, check=True).stdout
    exported = {line.split()[-1] for line in nm.splitlines()
                if line.strip() and not line.endswith(":")}
    errs = [f"{s}: called from Swift but not declared in {header}"
            for s in sorted(called - declared)]
    errs += [f"{s}: declared in {header} but not exported by {lib}"
             for s in sorted(declared - exported)]
    return errs, len(called)


def abi_errors(swift_files, lib):
    """Replays the generated Swift's initialisation check (contract version and every API
    checksum) against the real library through ctypes."""
    so = ctypes.CDLL(os.path.abspath(lib))
    src = ""
    for f in swift_files:
        with open(f, encoding="utf-8") as fh:
            src += fh.read()
    errs, n = [], 0
    want = re.search(r"let bindings_contract_version = (\d+)", src)
    getter = re.search(r"let scaffolding_contract_version = (\w+)\(\)", src)
    if not (want and getter):
        return ["no 'bindings_contract_version' check found in the Swift files"], 0
    try:
        fn = getattr(so, getter.group(1))
    except AttributeError:
        return [f"{getter.group(1)}: not exported by {lib}"], 0
    fn.restype, fn.argtypes = ctypes.c_uint32, []
    if fn() != int(want.group(1)):
        errs.append(f"contract version: Swift expects {want.group(1)}, {lib} has {fn()}")
    for name, expected in re.findall(r"if \((uniffi_\w+_checksum_\w+)\(\) != (\d+)\)", src):
        n += 1
        try:
            fn = getattr(so, name)
        except AttributeError:
            errs.append(f"{name}: not exported by {lib}")
            continue
        fn.restype, fn.argtypes = ctypes.c_uint16, []
        if fn() != int(expected):
            errs.append(f"{name}: Swift expects {expected}, {lib} returns {fn()} "
                        "(bindings out of date)")
    if n == 0:
        errs.append("no API checksum checks found in the Swift files")
    return errs, n


def modulemap_errors(modulemap, swift_files):
    """The modulemap declares the C module the Swift imports, with a header beside it."""
    with open(modulemap, encoding="utf-8") as fh:
        text = fh.read()
    errs = []
    module = re.search(r"^\s*module\s+(\w+)\s*\{", text, re.M)
    headers = re.findall(r'^\s*header\s+"([^"]+)"', text, re.M)
    if not module:
        return [f"{modulemap}: no module declaration"]
    if not headers:
        errs.append(f"{modulemap}: no header")
    for h in headers:
        if not os.path.isfile(os.path.join(os.path.dirname(modulemap), h)):
            errs.append(f"{modulemap}: header {h} does not exist beside it")
    imported = set()
    for f in swift_files:
        with open(f, encoding="utf-8") as fh:
            imported |= set(re.findall(r"canImport\((\w+FFI)\)", fh.read()))
    if module.group(1) not in imported:
        errs.append(f"{modulemap}: declares module {module.group(1)}, the Swift imports "
                    f"{sorted(imported) or 'no FFI module'}")
    return errs


# ---------------------------------------------------------------------------------------------
# 5: API usage of hand-written Swift against the generated API

def text(src, node):
    return src[node.start_byte:node.end_byte].decode("utf-8", "replace")


def norm_type(s):
    """A type's text without whitespace or comments, for comparison."""
    s = re.sub(r"/\*.*?\*/|//[^\n]*", "", s, flags=re.S)
    return re.sub(r"\s+", "", s)


class Param:
    """One declared parameter: its argument label ('_' for none), type text and default."""

    def __init__(self, label, type_text, has_default):
        self.label, self.type, self.has_default = label, type_text, has_default


class Func:
    """A declared function, initialiser or protocol requirement."""

    def __init__(self, name, params, is_async, throws, returns, line):
        self.name, self.params = name, params
        self.is_async, self.throws, self.returns, self.line = is_async, throws, returns, line

    def signature(self):
        labels = "".join(f"{p.label}:" for p in self.params)
        return f"{self.name}({labels})"


def read_func(src, node):
    """A Func from a function_declaration, protocol_function_declaration or init_declaration."""
    name, params, is_async, throws, returns = "init", [], False, False, None
    children = node.children
    after_arrow = False
    for i, c in enumerate(children):
        field = node.field_name_for_child(i)
        if c.type == "simple_identifier" and field == "name" and not after_arrow:
            name = text(src, c).strip("`")
        elif c.type == "parameter":
            params.append(read_param(src, c))
        elif c.type == "default_value" or field == "default_value":
            if params:
                params[-1].has_default = True
        elif c.type == "async":
            is_async = True
        elif c.type in ("throws", "rethrows"):
            throws = True
        elif c.type == "->":
            after_arrow = True
        elif after_arrow and returns is None and c.type not in ("function_body", "type_constraints"):
            returns = norm_type(text(src, c))
    return Func(name, params, is_async, throws, returns, node.start_point[0] + 1)


def read_param(src, node):
    """A Param from a parameter node: [external_name] name ':' type."""
    external, internal, type_text, seen_colon = None, None, None, False
    for i, c in enumerate(node.children):
        field = node.field_name_for_child(i)
        if c.type == ":":
            seen_colon = True
        elif not seen_colon and field == "external_name":
            external = text(src, c)
        elif not seen_colon and c.type == "simple_identifier":
            internal = text(src, c)
        elif seen_colon and type_text is None and c.type not in ("comment", "multiline_comment"):
            type_text = norm_type(text(src, c))
    label = external if external is not None else (internal or "_")
    return Param(label, type_text or "", False)


def read_enum_cases(src, node):
    """The cases of an enum_entry with associated values, as Funcs (constructing a case is a
    call of `Enum.case(label: value, ...)`)."""
    out, name = [], None
    for i, c in enumerate(node.children):
        field = node.field_name_for_child(i)
        if field == "name" and c.type == "simple_identifier":
            name = text(src, c)
        elif field == "data_contents" and c.type == "enum_type_parameters" and name:
            params, label = [], None
            for p in c.children:
                if p.type == "simple_identifier" and label is None:
                    label = text(src, p)
                elif p.type in (",", ")"):
                    params.append(Param(label or "_", "", False))
                    label = None
            out.append(Func(name, params, False, False, None, node.start_point[0] + 1))
            name = None
    return out


def body_of(node):
    for i, c in enumerate(node.children):
        if node.field_name_for_child(i) == "body":
            return c
    return None


def type_name(src, node):
    for i, c in enumerate(node.children):
        if node.field_name_for_child(i) == "name" and c.type == "type_identifier":
            return text(src, c)
    return None


def inherited(src, node):
    """Names in a declaration's inheritance clause."""
    out = []
    for c in node.children:
        if c.type == "inheritance_specifier":
            out.append(norm_type(text(src, c)).lstrip("@"))
    return out


def walk(node):
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


class Api:
    """What the generated Swift declares: protocols, initialisers, free and static functions,
    and the methods of the generated objects."""

    def __init__(self, path, raw=False):
        src, tree = parse(path, raw)
        self.protocols = {}   # name -> [Func]
        self.inits = {}       # type name -> [Func]
        self.statics = {}     # (type, name) -> [Func]
        self.functions = {}   # free function name -> [Func]
        self.methods = {}     # method name of a generated *Protocol -> [Func]
        self.types = set()    # every type the generated Swift declares
        self.objects = {}     # generated object class or its protocol -> that protocol
        for node in tree.root_node.children:
            if node.type == "protocol_declaration":
                name = type_name(src, node)
                self.types.add(name)
                reqs = [read_func(src, c) for c in body_of(node).children
                        if c.type == "protocol_function_declaration"]
                self.protocols[name] = reqs
                if name.endswith("Protocol"):
                    for f in reqs:
                        self.methods.setdefault(f.name, []).append(f)
            elif node.type == "class_declaration":
                name = type_name(src, node)
                if name is None or name.startswith("FfiConverter"):
                    continue  # extensions and the converters are no API
                self.types.add(name)
                body = body_of(node)
                for c in body.children if body is not None else []:
                    if c.type == "enum_entry":
                        for f in read_enum_cases(src, c):
                            self.statics.setdefault((name, f.name), []).append(f)
                    if c.type == "init_declaration" and is_public(src, c):
                        self.inits.setdefault(name, []).append(read_func(src, c))
                    elif c.type == "function_declaration" and is_public(src, c) and is_static(src, c):
                        f = read_func(src, c)
                        self.statics.setdefault((name, f.name), []).append(f)
            elif node.type == "function_declaration" and is_public(src, node):
                f = read_func(src, node)
                if not f.name.startswith(("FfiConverter", "uniffi")):
                    self.functions.setdefault(f.name, []).append(f)
        for name in self.protocols:
            if name.endswith("Protocol") and name[:-len("Protocol")] in self.types:
                self.objects[name] = name
                self.objects[name[:-len("Protocol")]] = name


def modifiers_text(src, node):
    for c in node.children:
        if c.type == "modifiers":
            return text(src, c)
    return ""


def is_public(src, node):
    return re.search(r"\b(public|open)\b", modifiers_text(src, node)) is not None


def is_static(src, node):
    return re.search(r"\b(static|class)\b", modifiers_text(src, node)) is not None


INFIX = {"additive_expression", "multiplicative_expression", "comparison_expression",
         "equality_expression", "conjunction_expression", "disjunction_expression",
         "nil_coalescing_expression", "range_expression", "infix_expression",
         "bitwise_operation"}


def call_parts(src, call):
    """(receiver text or None, called name, argument labels) of a call_expression."""
    callee = call.children[0]
    suffix = call.children[1] if len(call.children) > 1 else None
    # tree-sitter-swift 0.7.4 binds a call suffix to a whole infix expression
    # (`"a" + w.f()` parses as `("a" + w.f)()`): the callee is its rightmost operand.
    while callee.type in INFIX and callee.named_children:
        callee = callee.named_children[-1]
    if callee.type == "simple_identifier":
        receiver, name = None, text(src, callee)
    elif callee.type == "navigation_expression":
        target = callee.child_by_field_name("target")
        nav = callee.child_by_field_name("suffix")
        if nav is None or target is None:
            return None
        ident = nav.child_by_field_name("suffix")
        if ident is None or ident.type != "simple_identifier":
            return None
        receiver, name = text(src, target), text(src, ident)
    else:
        return None
    if suffix is None or suffix.type != "call_suffix":
        return None
    labels = []
    for c in suffix.children:
        if c.type == "value_arguments":
            for a in c.children:
                if a.type == "value_argument":
                    label = a.child_by_field_name("name")
                    labels.append(text(src, label).rstrip(":").strip() if label else "_")
        elif c.type == "lambda_literal":
            labels.append("_")  # trailing closure
    return receiver, name.strip("`"), labels


def labels_match(call_labels, func):
    """The call's labels are the declared ones in order, skipping only defaulted parameters."""
    i = 0
    for p in func.params:
        if i < len(call_labels) and call_labels[i] == p.label:
            i += 1
        elif not p.has_default:
            return False
    return i == len(call_labels)


def marked(src, node, kind):
    """Whether an enclosing expression of the same statement is a `try`/`await` (or, for
    `await`, an `async let` binding)."""
    wanted = "try_expression" if kind == "try" else "await_expression"
    n = node.parent
    while n is not None and n.type not in ("statements", "function_body", "lambda_literal",
                                           "class_body", "source_file"):
        if n.type == wanted:
            return True
        if kind == "await" and n.type == "property_declaration" and \
                re.match(r"\s*async\s+let\b", text(src, n)):
            return True
        n = n.parent
    return False



SCOPES = {"function_declaration", "init_declaration", "lambda_literal", "class_body",
          "source_file"}


def base_type(type_text):
    """`Wallet?` / `Wallet!` / `any WalletProtocol` -> the bare type name."""
    t = norm_type(type_text or "").rstrip("?!")
    return t[3:] if t.startswith("any") and t[3:4].isupper() else t


def scope_of(node):
    """The innermost function, closure, type body or file around `node`."""
    n = node.parent
    while n is not None and n.type not in SCOPES:
        n = n.parent
    return n


class Typer:
    """Which local names hold a generated object (Wallet, EventStream): from parameter and
    property types, `let x = try Wallet.open(...)`, `let h = try w.startEvents(...)`, calls of
    hand-written functions declared to return one, and `if/guard let x = y`. Scopes are the
    enclosing function, closure, type body or file; nothing subtler."""

    def __init__(self, api, src, tree, local_funcs):
        self.api, self.src, self.local_funcs = api, src, local_funcs
        self.table = {}
        for node in walk(tree.root_node):
            if node.type == "parameter" and node.parent is not None and \
                    node.parent.type in ("function_declaration", "init_declaration"):
                p = read_param(src, node)
                names = [text(src, c) for c in node.children if c.type == "simple_identifier"]
                if names:
                    self.bind(node.parent, names[-1], p.type)
            elif node.type == "property_declaration":
                self.bind_property(node)
            elif node.type in ("if_statement", "guard_statement"):
                self.bind_condition(node)

    def bind(self, scope, name, type_text):
        proto = self.api.objects.get(base_type(type_text))
        if proto:
            self.table[(scope.id, name)] = proto

    def bind_property(self, node):
        name, annotation, value = None, None, None
        for i, c in enumerate(node.children):
            field = node.field_name_for_child(i)
            if c.type == "pattern":
                ident = c.child_by_field_name("bound_identifier")
                name = text(self.src, ident) if ident is not None else None
            elif c.type == "type_annotation":
                annotation = text(self.src, c).lstrip(":")
            elif field == "value":
                value = c
        if name is None:
            return
        scope = scope_of(node)
        if annotation:
            self.bind(scope, name, annotation)
        elif value is not None:
            proto = self.type_of(value)
            if proto:
                self.table[(scope.id, name)] = proto

    def bind_condition(self, node):
        children = list(enumerate(node.children))
        for k, (i, c) in enumerate(children):
            if node.field_name_for_child(i) == "bound_identifier" and k + 2 < len(children) \
                    and children[k + 1][1].type == "=":
                proto = self.type_of(children[k + 2][1])
                if proto:
                    self.table[(scope_of(node).id, text(self.src, c))] = proto

    def lookup(self, node, name):
        n = node
        while n is not None:
            if n.type in SCOPES and (n.id, name) in self.table:
                return self.table[(n.id, name)]
            n = n.parent
        return None

    def type_of(self, expr):
        """The generated object protocol an expression evaluates to, if recognisable."""
        while expr is not None and expr.type in ("try_expression", "await_expression"):
            expr = expr.child_by_field_name("expr") or expr.named_children[-1]
        if expr is None:
            return None
        if expr.type == "simple_identifier":
            return self.lookup(expr, text(self.src, expr))
        if expr.type != "call_expression":
            return None
        parts = call_parts(self.src, expr)
        if parts is None:
            return None
        receiver, name, _ = parts
        funcs = []
        if receiver is None:
            funcs = self.local_funcs.get(name, [])
        elif receiver in self.api.types:
            funcs = self.api.statics.get((receiver, name), [])
        else:
            proto = self.receiver_type(expr, receiver)
            if proto:
                funcs = [f for f in self.api.protocols.get(proto, []) if f.name == name]
        for f in funcs:
            proto = self.api.objects.get(base_type(f.returns))
            if proto:
                return proto
        return None

    def receiver_type(self, node, receiver):
        """The generated object protocol of a call's receiver (`x` or `self.x`), if known."""
        if receiver.startswith("self."):
            receiver = receiver[len("self."):]
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", receiver or ""):
            return None
        return self.lookup(node, receiver)


def api_errors(api, files, raw=False):
    """Conformance and call-site errors of hand-written files against the generated API."""
    errs, calls, conformances = [], 0, 0
    parsed = [(path,) + parse(path, raw) for path in files]
    # Functions the hand-written files declare themselves: a method call that fits one of them
    # (e.g. an app model's own `confirm()`) is not taken for a call of the generated API.
    local = {}
    extended = {}  # protocol -> methods hand-written extensions add to a generated object
    for _, src, tree in parsed:
        for node in walk(tree.root_node):
            if node.type == "function_declaration":
                f = read_func(src, node)
                local.setdefault(f.name, []).append(f)
                owner = node.parent.parent if node.parent is not None else None
                if owner is not None and owner.type == "class_declaration" and \
                        text(src, owner).lstrip().startswith("extension"):
                    target = owner.child_by_field_name("name")
                    proto = api.objects.get(base_type(text(src, target))) if target else None
                    if proto:
                        extended.setdefault(proto, []).append(f)
    for path, src, tree in parsed:
        typer = Typer(api, src, tree, local)
        for node in walk(tree.root_node):
            if node.type == "class_declaration":
                for proto in inherited(src, node):
                    if proto not in api.protocols:
                        continue
                    conformances += 1
                    errs += conformance_errors(api, path, src, node, proto)
            elif node.type == "call_expression":
                parts = call_parts(src, node)
                if parts is None:
                    continue
                receiver, name, labels = parts
                proto = typer.receiver_type(node, receiver) if receiver else None
                if proto is not None:
                    # The receiver is known to be a generated object: the method must exist.
                    own = [f for f in api.protocols[proto] if f.name == name]
                    added = [f for f in extended.get(proto, []) if f.name == name]
                    calls += 1
                    line = node.start_point[0] + 1
                    if not own and not added:
                        errs.append(f"{path}:{line}: {receiver}.{name}(...): {proto} has no "
                                    f"method {name}")
                    elif own:
                        # A hand-written extension may overload a generated method
                        # (`handlePush(userInfo:)` beside `handlePush(payload:)`).
                        errs += call_errors(src, node, path, f"{receiver}.{name}", labels,
                                            own + added)
                    elif not any(labels_match(labels, f) for f in added):
                        errs.append(f"{path}:{line}: call {receiver}.{name} matches no "
                                    f"declaration of the extension")
                    continue
                if receiver is None and name in api.inits:
                    candidates, what = api.inits[name], f"{name}.init"
                elif receiver is None and name in api.functions:
                    candidates, what = api.functions[name], name
                elif receiver in api.types and (receiver, name) in api.statics:
                    candidates, what = api.statics[(receiver, name)], f"{receiver}.{name}"
                elif receiver is not None and receiver not in api.types and name in api.methods:
                    candidates, what = api.methods[name], f".{name}"
                else:
                    continue
                if receiver is not None and any(labels_match(labels, f) for f in local.get(name, [])):
                    continue
                calls += 1
                errs += call_errors(src, node, path, what, labels, candidates)
    return errs, calls, conformances


def call_errors(src, node, path, what, labels, candidates):
    """Labels fit one of `candidates`; try/await present when every fitting one needs them."""
    line = node.start_point[0] + 1
    fits = [f for f in candidates if labels_match(labels, f)]
    if not fits:
        shown = "".join(f"{label}:" for label in labels)
        known = ", ".join(sorted({f.signature() for f in candidates}))
        return [f"{path}:{line}: call {what}({shown}) matches no declaration: {known}"]
    errs = []
    if all(g.throws for g in fits) and not marked(src, node, "try"):
        errs.append(f"{path}:{line}: call {what} throws but is not marked with try")
    if all(g.is_async for g in fits) and not marked(src, node, "await"):
        errs.append(f"{path}:{line}: call {what} is async but is not awaited")
    return errs


def conformance_errors(api, path, src, node, proto):
    """Each requirement of `proto` implemented with matching name, labels and types."""
    body = body_of(node)
    impls = {}
    for c in body.children if body is not None else []:
        if c.type == "function_declaration":
            f = read_func(src, c)
            impls.setdefault(f.name, []).append(f)
    errs = []
    cls = type_name(src, node)
    for req in api.protocols[proto]:
        found = None
        for f in impls.get(req.name, []):
            if [(p.label, p.type) for p in f.params] == [(p.label, p.type) for p in req.params]:
                found = f
        if found is None:
            have = ", ".join(f.signature() for f in impls.get(req.name, [])) or "nothing"
            params = ", ".join(f"{p.label}: {p.type}" for p in req.params)
            errs.append(f"{path}:{node.start_point[0] + 1}: {cls} conforms to {proto} but does "
                        f"not implement {req.name}({params}) (has {have})")
            continue
        where = f"{path}:{found.line}: {cls}.{found.signature()}"
        if (found.returns or "") != (req.returns or ""):
            errs.append(f"{where} returns {found.returns or 'Void'}, {proto} requires "
                        f"{req.returns or 'Void'}")
        if found.is_async and not req.is_async:
            errs.append(f"{where} is async, the {proto} requirement is not")
        if found.throws and not req.throws:
            errs.append(f"{where} throws, the {proto} requirement does not")
    return errs


# ---------------------------------------------------------------------------------------------
# 6: error cases are lowerCamel

SWIFT_ERROR_ENUM = re.compile(r"^enum (\w+): Swift\.Error\b[^\n]*\{$", re.M)


def line_of(src, index):
    return src.count("\n", 0, index) + 1


def error_case_errors(generated, others):
    """UpperCamel cases left in the generated error enums (declaration and FfiConverter
    switches), and `ErrorEnum.UpperCamel` references in the other files."""
    with open(generated, encoding="utf-8") as f:
        src = f.read()
    enums = SWIFT_ERROR_ENUM.findall(src)
    if not enums:
        return [f"{generated}: no `enum X: Swift.Error` declaration found"], 0
    errs, cases = [], 0
    for name in enums:
        blocks = []
        decl = re.search(rf"^enum {name}: Swift\.Error\b", src, re.M)
        conv = re.search(rf"^public struct FfiConverterType{name}: ", src, re.M)
        for start, pattern in ((decl, r"^    case (`?\w+`?)"),
                               (conv, r"(?:\breturn \.|\bcase \.|\bcase let \.)(`?\w+`?)")):
            if start is None:
                errs.append(f"{generated}: no declaration or converter of {name}")
                continue
            end = src.find("\n}\n", start.start())
            blocks.append((start.start(), src[start.start():end], pattern))
        for offset, body, pattern in blocks:
            for m in re.finditer(pattern, body, re.M):
                case = m.group(1).strip("`")
                cases += 1
                if case[0].isupper():
                    errs.append(f"{generated}:{line_of(src, offset + m.start(1))}: UpperCamel "
                                f"error case {name}.{case} (Swift cases are lowerCamel: "
                                f"scripts/bindings.sh renames them)")
    pattern = re.compile(rf"\b({'|'.join(enums)})\.([A-Z]\w*)")
    for path in others:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for m in pattern.finditer(text):
            errs.append(f"{path}:{line_of(text, m.start())}: UpperCamel error case "
                        f"{m.group(1)}.{m.group(2)} (the generated error cases are "
                        f"lowerCamel, e.g. {m.group(1)}.keyStorage)")
    return errs, cases


# ---------------------------------------------------------------------------------------------
# 7: localization keys against the strings catalog

LOCALIZED = re.compile(r'String\(\s*localized:\s*"((?:[^"\\]|\\.)*)"')


def strings_errors(swift_files, catalog):
    """Keys used in `String(localized: "...")` exist in the catalog with an English text; every
    catalog key is used."""
    import json
    with open(catalog, encoding="utf-8") as fh:
        strings = json.load(fh).get("strings", {})
    errs, used = [], set()
    for f in swift_files:
        with open(f, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                for key in LOCALIZED.findall(line):
                    used.add(key)
                    entry = strings.get(key)
                    value = (((entry or {}).get("localizations", {}).get("en", {})
                              .get("stringUnit", {}).get("value")) or "").strip()
                    if entry is None:
                        errs.append(f"{f}:{number}: localization key {key!r} is not in {catalog}")
                    elif not value:
                        errs.append(f"{f}:{number}: localization key {key!r} has no English "
                                    f"text in {catalog}")
    errs += [f"{catalog}: key {key!r} is used by no Swift file" for key in sorted(set(strings) - used)]
    return errs, len(used)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", help="Swift files (the generated one and hand-written)")
    ap.add_argument("--header", help="the generated C header (OpenchargeWalletFFI.h)")
    ap.add_argument("--lib", help="the built library (.so for the checksum replay)")
    ap.add_argument("--modulemap", help="the generated modulemap")
    ap.add_argument("--api", help="the generated Swift: check the other files' use of its API")
    ap.add_argument("--strings", help="the strings catalog (.xcstrings) the Swift reads keys from")
    ap.add_argument("--raw", action="store_true", help="no normalisation of known grammar gaps")
    a = ap.parse_args()
    passed = failed = 0

    def report(errs, ok_line):
        nonlocal passed, failed
        for e in errs:
            print(e)
        if errs:
            failed += 1
        else:
            passed += 1
            print(f"ok  {ok_line}")

    for f in a.files:
        report(syntax_errors(f, a.raw), f"syntax {f}")
    if a.header and a.lib:
        errs, n = symbol_errors(a.files, a.header, a.lib)
        report(errs, f"{n} FFI symbols called by the Swift are declared in {a.header} and "
                     f"exported by {a.lib}")
    if a.lib and a.lib.endswith(".so"):
        errs, n = abi_errors(a.files, a.lib)
        report(errs, f"contract version + {n} API checksums in the Swift match {a.lib}")
    if a.modulemap:
        report(modulemap_errors(a.modulemap, a.files), f"modulemap {a.modulemap}")
    if a.api:
        api = Api(a.api, a.raw)
        others = [f for f in a.files if os.path.abspath(f) != os.path.abspath(a.api)]
        errs, calls, conformances = api_errors(api, others, a.raw)
        if calls + conformances == 0:
            errs.append("api: the hand-written Swift uses nothing of the generated API")
        report(errs, f"api: {conformances} protocol conformances and {calls} calls of the "
                     f"generated API in {len(others)} hand-written files match its declarations")
    if a.api:
        others = [f for f in a.files if os.path.abspath(f) != os.path.abspath(a.api)]
        errs, n = error_case_errors(a.api, others)
        report(errs, f"error cases: {n} case uses in the generated error enums are lowerCamel, "
                     f"and {len(others)} other files name no UpperCamel error case")
    if a.strings:
        hand = [f for f in a.files if not a.api or os.path.abspath(f) != os.path.abspath(a.api)]
        errs, n = strings_errors(hand, a.strings)
        report(errs, f"strings: {n} localization keys used by the Swift are in {a.strings}, "
                     "and it has no unused key")
    print(f"swift-check: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
