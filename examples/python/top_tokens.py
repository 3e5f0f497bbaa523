#!/usr/bin/env python3
"""top_tokens.py: the most likely next tokens after a prompt, through libattrgraph's C API.

Python standard library only (ctypes). Usage:

    python3 top_tokens.py [--lib PATH] MODEL TOKENIZER|- PROMPT [K]

The library is found from --lib, else $AG_LIBRARY, else the system search path
(ctypes.util.find_library("attrgraph"), i.e. ldconfig / LD_LIBRARY_PATH), else
"libattrgraph.so.0". TOKENIZER "-" uses the vocabulary inside a GGUF model.

Mirrors examples/top_tokens.c: ag_model_load, ag_tokenize, ag_trace_create,
ag_trace_tensor(AG_TENSOR_LOGITS), ag_token_decode, ag_trace_free, ag_model_free,
and ag_last_error() for every failure.
"""
import argparse
import ctypes
import ctypes.util
import math
import os
import sys
from ctypes import (POINTER, Structure, byref, c_char_p, c_float, c_int, c_int32,
                    c_int64, c_size_t, c_uint, c_void_p)

AG_OK = 0
AG_ERR_BUFFER_TOO_SMALL = -9
AG_TENSOR_LOGITS = 17


class ModelOptions(Structure):
    """ag_model_options (attrgraph.h). Fields are only ever appended; struct_size tells
    the library which version of the struct we were written against."""
    _fields_ = [
        ("struct_size", c_size_t),
        ("tokenizer_path", c_char_p),
        ("rms_eps", c_float),
        ("rope_theta", c_float),
    ]


class AttrgraphError(RuntimeError):
    pass


def load_library(path=None):
    candidates = [path, os.environ.get("AG_LIBRARY"), ctypes.util.find_library("attrgraph"),
                  "libattrgraph.so.0"]
    last = None
    for c in candidates:
        if not c:
            continue
        try:
            lib = ctypes.CDLL(c)
            break
        except OSError as e:
            last = e
    else:
        raise AttrgraphError("cannot load libattrgraph (use --lib or AG_LIBRARY): %s" % last)

    def fn(name, restype, *argtypes):
        f = getattr(lib, name)
        f.restype = restype
        f.argtypes = list(argtypes)

    fn("ag_version_string", c_char_p)
    fn("ag_version_number", c_uint)
    fn("ag_status_string", c_char_p, c_int)
    fn("ag_last_error", c_char_p)
    fn("ag_model_options_init", c_int, POINTER(ModelOptions), c_size_t)
    fn("ag_model_load", c_int, POINTER(c_void_p), c_char_p, POINTER(ModelOptions))
    fn("ag_model_free", None, c_void_p)
    fn("ag_tokenize", c_int, c_void_p, c_char_p, c_int32, POINTER(c_int32), c_size_t,
       POINTER(c_size_t))
    fn("ag_token_decode", c_int, c_void_p, c_int32, c_int32, c_char_p, c_size_t,
       POINTER(c_size_t))
    fn("ag_trace_create", c_int, POINTER(c_void_p), c_void_p, POINTER(c_int32), c_size_t,
       c_void_p)
    fn("ag_trace_free", None, c_void_p)
    fn("ag_trace_tensor", c_int, c_void_p, c_int, c_int32, POINTER(POINTER(c_float)),
       POINTER(c_int64), POINTER(c_int32))
    return lib


def check(lib, what, status):
    if status != AG_OK:
        raise AttrgraphError("%s failed (%s): %s" % (
            what, lib.ag_status_string(status).decode(), lib.ag_last_error().decode(errors="replace")))


def top_tokens(lib, model_path, tokenizer_path, prompt, k):
    opts = ModelOptions()
    check(lib, "ag_model_options_init", lib.ag_model_options_init(byref(opts), ctypes.sizeof(opts)))
    if tokenizer_path != "-":
        opts.tokenizer_path = tokenizer_path.encode()
    model = c_void_p()
    trace = c_void_p()
    try:
        check(lib, "ag_model_load", lib.ag_model_load(byref(model), model_path.encode(), byref(opts)))

        text = prompt.encode()
        n = c_size_t(0)
        st = lib.ag_tokenize(model, text, 1, None, 0, byref(n))   # ask for the size first
        if st not in (AG_OK, AG_ERR_BUFFER_TOO_SMALL):
            check(lib, "ag_tokenize", st)
        tokens = (c_int32 * max(n.value, 1))()
        check(lib, "ag_tokenize", lib.ag_tokenize(model, text, 1, tokens, n.value, byref(n)))
        ids = list(tokens[:n.value])
        print("prompt: %d tokens: %s" % (len(ids), " ".join(map(str, ids))))

        check(lib, "ag_trace_create", lib.ag_trace_create(byref(trace), model, tokens, n.value, None))
        data = POINTER(c_float)()
        shape = (c_int64 * 3)()
        ndim = c_int32(0)
        check(lib, "ag_trace_tensor",
              lib.ag_trace_tensor(trace, AG_TENSOR_LOGITS, 0, byref(data), shape, byref(ndim)))
        T, V = shape[0], shape[1]
        last = data[(T - 1) * V:T * V]            # copies the last row into a Python list
        mx = max(last)
        exps = [math.exp(x - mx) for x in last]
        z = sum(exps)
        order = sorted(range(V), key=lambda v: (-exps[v], v))[:k]
        buf = ctypes.create_string_buffer(256)
        out = []
        for rank, v in enumerate(order, 1):
            check(lib, "ag_token_decode",
                  lib.ag_token_decode(model, ids[-1], v, buf, len(buf), None))
            piece = buf.value.decode(errors="replace")
            out.append((v, piece, exps[v] / z))
            print('%2d. "%s"  p=%.4f  (id %d)' % (rank, piece, exps[v] / z, v))
        return out
    finally:
        lib.ag_trace_free(trace)                 # a trace before the model it borrows
        lib.ag_model_free(model)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", help="path of libattrgraph.so")
    ap.add_argument("model")
    ap.add_argument("tokenizer", help='llama2.c tokenizer .bin, or "-" for a GGUF model')
    ap.add_argument("prompt")
    ap.add_argument("k", nargs="?", type=int, default=5)
    a = ap.parse_args(argv)
    try:
        lib = load_library(a.lib)
        print("libattrgraph %s" % lib.ag_version_string().decode())
        top_tokens(lib, a.model, a.tokenizer, a.prompt, max(1, a.k))
    except AttrgraphError as e:
        print("top_tokens.py: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
