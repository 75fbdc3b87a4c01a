/*
 * connx.h — a small C interface to libonnx (the ONNX C++ reference library).
 *
 * Written against Debian's libonnx 1.12 (IR version 8, default-domain opset
 * 17). The header is plain C so that Swift can import it as a C module; the
 * implementation (connx.cpp) is C++ and catches every C++ exception before it
 * can cross this boundary.
 *
 * Conventions shared by all functions:
 *
 *  - Models are passed as serialized ModelProto bytes (`bytes`, `length`).
 *    The bytes are only read, never retained after the call returns. Models
 *    larger than 2 GiB cannot be represented by protobuf and are reported as
 *    CONNX_PARSE_ERROR.
 *
 *  - `message`/`message_capacity` is an optional caller-owned buffer for a
 *    human-readable diagnostic (libonnx's own wording, possibly several
 *    lines). It is always NUL-terminated when `message_capacity > 0`,
 *    truncated at a UTF-8 character boundary if needed, and set to the empty
 *    string on success. Pass NULL/0 to ignore diagnostics.
 *
 *  - The functions keep no state of their own between calls and may be called
 *    from several threads at once. (libonnx builds its operator-schema
 *    registry on first use; connx makes every call wait until that is done,
 *    which avoids a data race in libonnx 1.12.)
 *
 *  - Checks connx adds to libonnx 1.12's checker, because libonnx crashes
 *    or overruns memory on models that its checker lets through: a tensor's
 *    raw_data must be exactly as long as its data_type and dims require (the
 *    checker ignores the length; shape inference then writes past a buffer
 *    when it is not a whole number of elements), and a model with local
 *    functions must have IR version 8 or later (the checker looks at local
 *    functions only from IR 8 on; shape inference uses them regardless).
 *    Failures are reported as CONNX_INVALID.
 *
 *  - Stripped tensors. Callers may remove large tensor payloads before
 *    handing a model over (e.g. weights that are memory-mapped elsewhere). A
 *    "payload-less" tensor is a TensorProto that is not EXTERNAL, has no
 *    external_data entries, describes at least one element (no dimension is
 *    0; a scalar counts as one element) and has no data in any of raw_data,
 *    float_data, int32_data, string_data, int64_data, double_data or
 *    uint64_data. They are looked for everywhere a TensorProto can occur:
 *    graph initializers, sparse initializers (values and indices), tensor
 *    attributes (Constant's `value`, ...), subgraphs (If/Loop/Scan bodies, at
 *    any depth), model-local functions and training-info graphs. libonnx
 *    1.12's checker rejects every one of them ("TensorProto (tensor name: W)
 *    should contain one and only one value field.") unless
 *    CONNX_CHECK_SKIP_TENSOR_DATA is given. Shape inference only fails on
 *    them where an operator needs their values (Reshape's `shape`,
 *    ConstantOfShape's input, ...): libonnx then reports "Data size
 *    mismatch", which is fatal only when strict. When a call fails and the
 *    model has payload-less tensors, the message ends with a note naming
 *    them.
 *
 *  - External data. libonnx 1.12's checker verifies that each
 *    data_location=EXTERNAL tensor has a "location" entry and no inline data,
 *    and that stat() finds the location. This API has no model directory, so
 *    a relative location is resolved against the process's current
 *    directory. CONNX_CHECK_SKIP_TENSOR_DATA turns that file lookup off.
 *    External files are never read.
 *
 * libonnx 1.12's version converter is deliberately not exposed: it crashes
 * (SIGSEGV, not an exception) on some malformed graphs.
 */
#ifndef CONNX_H
#define CONNX_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Result codes. (Plain macros so that Swift imports them as Int32, the type
   the functions return.) */

/* Success. */
#define CONNX_OK 0

/* The model was parsed but libonnx rejected it (checker or, for full checks
   and strict shape inference, shape inference); `message` says why. Besides
   its validation errors, libonnx reports some defects with standard
   exceptions (e.g. "Invalid tensor data type 19." for an element type it
   does not know); any std::runtime_error or std::logic_error is reported
   here. */
#define CONNX_INVALID 1

/* The bytes are not a parseable ModelProto, are empty, or are larger than
   2 GiB. (Protobuf is permissive: some non-ONNX bytes do parse, and are then
   reported as CONNX_INVALID.) */
#define CONNX_PARSE_ERROR 2

/* The model declares an IR version or an operator-set version newer than
   this libonnx knows (see connx_max_supported_ir_version and
   connx_max_supported_opset). This is not a verdict on the model: a newer
   ONNX may well accept it. `message` names the offending version. */
#define CONNX_UNSUPPORTED_VERSION 3

/* libonnx failed without a verdict: out of memory, or a C++ exception of any
   other kind; `message` holds the exception text. Also returned for invalid
   arguments (NULL out pointers). */
#define CONNX_INTERNAL_ERROR 4

/* Flags for connx_check_model, to be or'ed together. */

/* Also run shape inference with type checking in strict mode after the
   checker, as `onnx.checker.check_model(model, full_check=True)` does. */
#define CONNX_CHECK_FULL 1

/* Do not look at tensor data: accept payload-less (stripped) tensors and do
   not look for the files of external ones. Implemented by checking a private
   copy of the model in which every payload-less tensor is marked
   data_location=EXTERNAL and every external tensor's location is replaced by
   "/" (which 1.12's checker stat()s successfully). All else about those
   tensors (name, data_type, dims, a location entry for external ones, their
   uses) is still checked. Sparse tensors are the exception: the checker
   reads their indices, so a sparse tensor whose indices were stripped is
   still rejected ("Cannot parse data from external tensors"). Under
   CONNX_CHECK_FULL, an operator whose shape inference needs the values of a
   stripped tensor (e.g. Reshape's `shape` input) fails the same way, so do
   not strip small shape-like tensors if you want a full check. */
#define CONNX_CHECK_SKIP_TENSOR_DATA 2

/*
 * Validates a serialized ModelProto with libonnx's checker
 * (onnx::checker::check_model), plus shape inference when CONNX_CHECK_FULL
 * is set. `flags` is a combination of the CONNX_CHECK_* values.
 *
 * Before running the checker the model's IR version and its opset imports
 * (the model's and those of its local functions) are compared with what
 * this libonnx supports; a newer one yields CONNX_UNSUPPORTED_VERSION rather
 * than CONNX_INVALID. Opset imports of domains libonnx does not know at all
 * (custom domains) are not version-checked.
 *
 * connx's own additional checks (see the top of this file) run before
 * libonnx's checker. Payload-less and external tensors: see the notes at the
 * top and CONNX_CHECK_SKIP_TENSOR_DATA.
 *
 * Returns CONNX_OK, CONNX_INVALID, CONNX_PARSE_ERROR,
 * CONNX_UNSUPPORTED_VERSION or CONNX_INTERNAL_ERROR.
 */
int connx_check_model(const void *bytes, size_t length, int flags,
                      char *message, size_t message_capacity);

/*
 * Runs libonnx shape inference (onnx::shape_inference::InferShapes) on a
 * serialized ModelProto and returns the serialized result: the same model
 * with inferred types and shapes recorded in graph.value_info (and in
 * graph outputs whose shapes were not given), including subgraphs. Inferred
 * shapes are merged with existing annotations; a conflict between the two is
 * an error even when not strict.
 *
 *  strict     non-zero: any node whose inference fails makes the whole call
 *             fail with CONNX_INVALID (libonnx error_mode 1), and input/output
 *             types are checked. Zero: such nodes are skipped, their outputs
 *             are left without inferred type/shape, and the call succeeds.
 *  data_prop  non-zero: enable libonnx's partial data propagation: small
 *             integer tensors computed from shapes (Shape, Gather, Slice,
 *             Concat, ...) are tracked so that operators taking a shape as
 *             input can use them (e.g. Shape -> ConstantOfShape gets a full
 *             output shape). Not every operator consumes propagated values;
 *             in libonnx 1.12 Reshape, for one, does not.
 *
 * The returned model is the parsed input plus the inference results: other
 * fields, including payload-less tensors and unknown protobuf fields, are
 * carried over as given (protobuf may re-encode them, e.g. field order).
 *
 * The model is first validated exactly as by connx_check_model with
 * CONNX_CHECK_SKIP_TENSOR_DATA, and that result code and message are
 * returned if it fails (CONNX_INVALID messages then start with "the model
 * failed checking"). This is not optional: libonnx 1.12's shape
 * inference can crash (SIGSEGV) on graphs its checker rejects, e.g. nodes
 * out of topological order with data propagation on; and for opsets newer
 * than it knows it would silently apply outdated operator definitions.
 *
 * On CONNX_OK, *out_bytes receives a malloc'ed buffer of *out_length bytes
 * that the caller releases with connx_free. On any other result *out_bytes
 * is set to NULL and *out_length to 0.
 */
int connx_infer_shapes(const void *bytes, size_t length, int strict,
                       int data_prop, void **out_bytes, size_t *out_length,
                       char *message, size_t message_capacity);

/* Releases a buffer returned by this library. NULL is ignored. */
void connx_free(void *pointer);

/* libonnx's release version, e.g. "1.12.0". Static storage; do not free. */
const char *connx_onnx_version(void);

/* The newest ModelProto IR version libonnx accepts (8 for libonnx 1.12). */
int connx_max_supported_ir_version(void);

/*
 * The newest operator-set version libonnx knows for `domain` (NULL, "" or
 * "ai.onnx" for the default domain: 17 for libonnx 1.12; "ai.onnx.ml": 3),
 * or -1 if libonnx has no schemas for that domain.
 */
int connx_max_supported_opset(const char *domain);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CONNX_H */
