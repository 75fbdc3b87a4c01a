// connx.cpp — implementation of the C interface declared in include/connx.h.
//
// Every exported function is `noexcept` in spirit: all C++ exceptions are
// caught here and turned into result codes plus a message.

// SwiftPM defines DEBUG=1 in debug builds; libonnx's version-converter headers
// (pulled in indirectly) use an identifier named DEBUG.
#undef DEBUG

#include "connx.h"

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "onnx/checker.h"
#include "onnx/common/version.h"
#include "onnx/defs/schema.h"
#include "onnx/defs/shape_inference.h"
#include "onnx/onnx_pb.h"
#include "onnx/shape_inference/implementation.h"

namespace {

using onnx::AttributeProto;
using onnx::FunctionProto;
using onnx::GraphProto;
using onnx::ModelProto;
using onnx::NodeProto;
using onnx::SparseTensorProto;
using onnx::TensorProto;

// ---------------------------------------------------------------------------
// Messages

void write_message(char *buffer, size_t capacity, const std::string &text) {
    if (buffer == nullptr || capacity == 0) return;
    size_t n = text.size();
    if (n > capacity - 1) {
        n = capacity - 1;
        // text[n] is the first byte left out; if it continues a UTF-8
        // sequence, leave out that whole character.
        while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
    }
    std::memcpy(buffer, text.data(), n);
    buffer[n] = '\0';
}

// ---------------------------------------------------------------------------
// Parsing

bool parse_model(const void *bytes, size_t length, ModelProto &model, std::string &error) {
    if (length > static_cast<size_t>(INT_MAX)) {
        error = "model is larger than 2 GiB, which protobuf cannot parse";
        return false;
    }
    if (length == 0) {
        error = "input is empty (0 bytes)";
        return false;
    }
    if (bytes == nullptr) {
        error = "bytes is NULL";
        return false;
    }
    if (!model.ParseFromArray(bytes, static_cast<int>(length))) {
        error = "bytes are not a valid serialized onnx.ModelProto";
        return false;
    }
    return true;
}

// ---------------------------------------------------------------------------
// Registry initialization
//
// libonnx fills its operator-schema registry (and DomainToVersionRange, which
// the version gate reads) on first use. With several threads making their
// first calls at once, ThreadSanitizer reports data races inside libonnx
// 1.12's checker and in reads of DomainToVersionRange. So every entry point
// first waits here until one caller has completed the registration (a C++
// function-local static is initialized once; other threads block meanwhile).

void ensure_registry() {
    static const bool ready = [] {
        (void)onnx::OpSchemaRegistry::Schema("Conv", 11, "");
        return true;
    }();
    (void)ready;
}

// ---------------------------------------------------------------------------
// Version gate

int max_opset_for_domain(const std::string &domain) {
    ensure_registry();
    const std::string &key = (domain == "ai.onnx") ? std::string() : domain;
    const auto &ranges = onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
    auto it = ranges.find(key);
    return it == ranges.end() ? -1 : it->second.second;
}

std::string domain_label(const std::string &domain) {
    return domain.empty() ? std::string("ai.onnx (default domain)") : domain;
}

template <typename OpsetImports>
bool opsets_supported(const OpsetImports &imports, const std::string &where, std::string &error) {
    for (const auto &import : imports) {
        int max = max_opset_for_domain(import.domain());
        if (max >= 0 && import.version() > max) {
            error = where + " imports opset " + std::to_string(import.version()) + " of domain " +
                domain_label(import.domain()) + ", but libonnx " + onnx::LAST_RELEASE_VERSION +
                " supports at most opset " + std::to_string(max) + " of that domain";
            return false;
        }
    }
    return true;
}

bool versions_supported(const ModelProto &model, std::string &error) {
    const int64_t max_ir = static_cast<int64_t>(onnx::Version::IR_VERSION);
    if (model.ir_version() > max_ir) {
        error = "model has IR version " + std::to_string(model.ir_version()) + ", but libonnx " +
            onnx::LAST_RELEASE_VERSION + " supports at most IR version " + std::to_string(max_ir);
        return false;
    }
    if (!opsets_supported(model.opset_import(), "model", error)) return false;
    for (const FunctionProto &function : model.functions()) {
        if (!opsets_supported(function.opset_import(), "local function '" + function.domain() + ":" +
                                  function.name() + "'",
                              error))
            return false;
    }
    return true;
}

// ---------------------------------------------------------------------------
// Payload-less ("stripped") and external tensors
//
// libonnx 1.12's checker accepts a data_location=EXTERNAL tensor if it has no
// inline data and a "location" entry naming something stat() can find; with
// no model directory (our case) the location is resolved against the current
// directory, or used as is when absolute. Unknown external_data keys are
// ignored. Shape inference never touches the file system; where an operator
// needs the values of a tensor, ParseData throws "Cannot parse data from
// external tensors" for an external one and "Data size mismatch" for one
// whose payload is missing or short.
//
// So, for CONNX_CHECK_SKIP_TENSOR_DATA, each payload-less tensor is marked
// EXTERNAL with location "/" (which always exists), and existing external
// tensors get that location too, so that no file is looked for. This is only
// ever done to a private copy that is checked and then discarded.

const char kLocationKey[] = "location";
const char kAlwaysThere[] = "/";

bool is_external(const TensorProto &t) {
    return t.has_data_location() && t.data_location() == TensorProto::EXTERNAL;
}

bool is_payload_less(const TensorProto &t) {
    if (is_external(t) || t.external_data_size() != 0) return false;
    for (int64_t d : t.dims())
        if (d == 0) return false; // zero elements: an empty tensor is complete
    return t.raw_data().empty() && t.float_data_size() == 0 && t.int32_data_size() == 0 &&
        t.string_data_size() == 0 && t.int64_data_size() == 0 && t.double_data_size() == 0 &&
        t.uint64_data_size() == 0;
}

// Bytes per element of the fixed-size element types libonnx 1.12 knows, or 0
// (STRING, UNDEFINED, and types newer than 1.12).
size_t element_size(int32_t data_type) {
    switch (data_type) {
    case TensorProto::UINT8:
    case TensorProto::INT8:
    case TensorProto::BOOL:
        return 1;
    case TensorProto::UINT16:
    case TensorProto::INT16:
    case TensorProto::FLOAT16:
    case TensorProto::BFLOAT16:
        return 2;
    case TensorProto::FLOAT:
    case TensorProto::INT32:
    case TensorProto::UINT32:
        return 4;
    case TensorProto::INT64:
    case TensorProto::UINT64:
    case TensorProto::DOUBLE:
    case TensorProto::COMPLEX64:
        return 8;
    case TensorProto::COMPLEX128:
        return 16;
    default:
        return 0;
    }
}

// libonnx 1.12's ParseData (used by shape inference and by the checker for
// sparse indices) overruns its buffer when raw_data's length is not a
// multiple of the element size, and its checker does not compare raw_data's
// length with dims. So connx requires the exact length wherever raw_data is
// used. Returns an empty string if `t` is fine.
std::string raw_data_size_error(const TensorProto &t) {
    if (t.raw_data().empty() || is_external(t)) return std::string();
    const size_t size = element_size(t.data_type());
    if (size == 0) return std::string(); // libonnx rejects these itself
    // Element count, saturating at a value no real payload reaches.
    const uint64_t limit = UINT64_MAX / 16;
    uint64_t count = 1;
    std::string shape = "[";
    for (int i = 0; i < t.dims_size(); ++i) {
        const int64_t d = t.dims(i);
        shape += (i ? ", " : "") + std::to_string(d);
        if (d < 0) {
            return "TensorProto (tensor name: " + t.name() + ") has a negative dimension " + std::to_string(d);
        }
        count = (d != 0 && count > limit / static_cast<uint64_t>(d)) ? limit : count * static_cast<uint64_t>(d);
    }
    shape += "]";
    const uint64_t expected = count * size;
    if (static_cast<uint64_t>(t.raw_data().size()) == expected) return std::string();
    return "TensorProto (tensor name: " + t.name() + ") has " + std::to_string(t.raw_data().size()) +
        " bytes of raw_data, but its data_type (" + std::to_string(t.data_type()) + ") and dims " + shape +
        " call for " + (count == limit ? std::string("far more") : std::to_string(expected));
}

// Visits every TensorProto of a model: initializers, sparse initializers
// (values and indices), tensor attributes, subgraphs at any depth, local
// functions and training-info graphs.
class TensorWalker {
 public:
    // detach == false: only collect the names of payload-less tensors.
    // detach == true: also make the checker ignore tensor data (see above).
    explicit TensorWalker(bool detach) : detach_(detach) {}

    void model(ModelProto &m) {
        if (m.has_graph()) graph(*m.mutable_graph());
        for (FunctionProto &f : *m.mutable_functions())
            for (NodeProto &n : *f.mutable_node()) node(n);
        for (auto &info : *m.mutable_training_info()) {
            if (info.has_initialization()) graph(*info.mutable_initialization());
            if (info.has_algorithm()) graph(*info.mutable_algorithm());
        }
    }

    // Names of the payload-less tensors found.
    const std::vector<std::string> &payload_less() const { return payload_less_; }

    // The first raw_data length error found (see raw_data_size_error).
    const std::string &raw_data_error() const { return raw_data_error_; }

 private:
    bool detach_;
    std::vector<std::string> payload_less_;
    std::string raw_data_error_;

    void graph(GraphProto &g) {
        for (TensorProto &t : *g.mutable_initializer()) tensor(t);
        for (SparseTensorProto &s : *g.mutable_sparse_initializer()) sparse(s);
        for (NodeProto &n : *g.mutable_node()) node(n);
    }

    void node(NodeProto &n) {
        for (AttributeProto &a : *n.mutable_attribute()) attribute(a);
    }

    void attribute(AttributeProto &a) {
        if (a.has_t()) tensor(*a.mutable_t());
        for (TensorProto &t : *a.mutable_tensors()) tensor(t);
        if (a.has_sparse_tensor()) sparse(*a.mutable_sparse_tensor());
        for (SparseTensorProto &s : *a.mutable_sparse_tensors()) sparse(s);
        if (a.has_g()) graph(*a.mutable_g());
        for (GraphProto &g : *a.mutable_graphs()) graph(g);
    }

    void sparse(SparseTensorProto &s) {
        if (s.has_values()) tensor(*s.mutable_values());
        if (s.has_indices()) tensor(*s.mutable_indices());
    }

    void tensor(TensorProto &t) {
        if (raw_data_error_.empty()) raw_data_error_ = raw_data_size_error(t);
        if (is_payload_less(t)) {
            payload_less_.push_back(t.name());
            if (!detach_) return;
            auto *location = t.add_external_data();
            location->set_key(kLocationKey);
            location->set_value(kAlwaysThere);
            t.set_data_location(TensorProto::EXTERNAL);
        } else if (detach_ && is_external(t)) {
            for (auto &entry : *t.mutable_external_data())
                if (entry.key() == kLocationKey) entry.set_value(kAlwaysThere);
        }
    }
};

// Appended to libonnx's message when payload-less tensors may explain a
// failure.
std::string payload_less_note(const std::vector<std::string> &names) {
    std::string note = "\n\n==> Note (connx): the model has " + std::to_string(names.size()) +
        " payload-less tensor(s): ";
    const size_t shown = names.size() < 8 ? names.size() : 8;
    for (size_t i = 0; i < shown; ++i) note += (i ? ", '" : "'") + names[i] + "'";
    if (shown < names.size()) note += ", ...";
    return note;
}

// ---------------------------------------------------------------------------
// Exception translation

// Runs `body`, which returns a result code and may set `text`; translates any
// exception into a code and text.
template <typename Body>
int guarded(std::string &text, Body body) {
    try {
        return body();
    } catch (const std::bad_alloc &) {
        text = "out of memory";
        return CONNX_INTERNAL_ERROR;
    } catch (const std::runtime_error &e) {
        // ValidationError, InferenceError and SchemaError are runtime_errors.
        text = e.what();
        return CONNX_INVALID;
    } catch (const std::logic_error &e) {
        // libonnx reports some defects this way from deep inside, e.g. an
        // unknown tensor element type ("Invalid tensor data type 19.",
        // std::invalid_argument) or a node with fewer outputs than its
        // schema requires ("Output 0 is out of bounds.", std::out_of_range).
        text = e.what();
        return CONNX_INVALID;
    } catch (const std::exception &e) {
        text = std::string("libonnx raised an unexpected exception: ") + e.what();
        return CONNX_INTERNAL_ERROR;
    } catch (...) {
        text = "libonnx raised an unexpected non-standard exception";
        return CONNX_INTERNAL_ERROR;
    }
}

// ---------------------------------------------------------------------------
// Checking

// The body of connx_check_model; may throw (see guarded).
int check(const void *bytes, size_t length, int flags, std::string &text,
          std::vector<std::string> &payload_less) {
    ensure_registry();
    ModelProto model;
    if (!parse_model(bytes, length, model, text)) return CONNX_PARSE_ERROR;
    if (!versions_supported(model, text)) return CONNX_UNSUPPORTED_VERSION;

    TensorWalker walker(/*detach=*/(flags & CONNX_CHECK_SKIP_TENSOR_DATA) != 0);
    walker.model(model);
    payload_less = walker.payload_less();
    if (!walker.raw_data_error().empty()) {
        text = walker.raw_data_error();
        return CONNX_INVALID;
    }

    // libonnx 1.12's checker only looks at model-local functions from IR
    // version 8 on (when they were introduced), while shape inference uses
    // them regardless, and can crash on unchecked ones.
    if (model.functions_size() != 0 && model.ir_version() < 8) {
        text = "model-local functions require IR version 8 or later, but the model has IR version " +
            std::to_string(model.ir_version());
        return CONNX_INVALID;
    }

    onnx::checker::check_model(model);

    if (flags & CONNX_CHECK_FULL) {
        onnx::ShapeInferenceOptions options(/*check_type=*/true, /*error_mode=*/1,
                                            /*enable_data_propagation=*/false);
        onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(), options);
    }
    return CONNX_OK;
}

} // namespace

// ---------------------------------------------------------------------------
// Exported functions

extern "C" int connx_check_model(const void *bytes, size_t length, int flags, char *message,
                                 size_t message_capacity) {
    std::string text;
    std::vector<std::string> payload_less;
    int code = guarded(text, [&]() -> int {
        return check(bytes, length, flags, text, payload_less);
    });
    if (code == CONNX_INVALID && !payload_less.empty()) text += payload_less_note(payload_less);
    write_message(message, message_capacity, code == CONNX_OK ? std::string() : text);
    return code;
}

extern "C" int connx_infer_shapes(const void *bytes, size_t length, int strict, int data_prop,
                                  void **out_bytes, size_t *out_length, char *message,
                                  size_t message_capacity) {
    if (out_bytes != nullptr) *out_bytes = nullptr;
    if (out_length != nullptr) *out_length = 0;
    if (out_bytes == nullptr || out_length == nullptr) {
        write_message(message, message_capacity, "out_bytes and out_length must not be NULL");
        return CONNX_INTERNAL_ERROR;
    }
    std::string text;
    std::vector<std::string> payload_less;
    int code = guarded(text, [&]() -> int {
        // libonnx 1.12's shape inference can crash on graphs its checker
        // rejects, so check first (on a copy of its own, discarded before the
        // model is parsed again for inference, to keep peak memory down).
        int checked = guarded(text, [&]() -> int {
            return check(bytes, length, CONNX_CHECK_SKIP_TENSOR_DATA, text, payload_less);
        });
        if (checked == CONNX_INVALID) text = "the model failed checking, so shape inference was not run: " + text;
        if (checked != CONNX_OK) return checked;

        // Payload-less tensors are left as given here.
        ModelProto model;
        if (!parse_model(bytes, length, model, text)) return CONNX_PARSE_ERROR;

        onnx::ShapeInferenceOptions options(/*check_type=*/strict != 0, /*error_mode=*/strict != 0 ? 1 : 0,
                                            /*enable_data_propagation=*/data_prop != 0);
        // libonnx requires a container for propagated values when data
        // propagation is on; the values themselves are not returned.
        std::unordered_map<std::string, onnx::TensorShapeProto> generated_shape_data;
        onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(), options,
                                           &generated_shape_data);

        const size_t size = model.ByteSizeLong();
        if (size > static_cast<size_t>(INT_MAX)) {
            text = "inferred model is larger than 2 GiB";
            return CONNX_INTERNAL_ERROR;
        }
        void *buffer = std::malloc(size == 0 ? 1 : size);
        if (buffer == nullptr) throw std::bad_alloc();
        if (!model.SerializeToArray(buffer, static_cast<int>(size))) {
            std::free(buffer);
            text = "could not serialize the inferred model";
            return CONNX_INTERNAL_ERROR;
        }
        *out_bytes = buffer;
        *out_length = size;
        return CONNX_OK;
    });
    if (code == CONNX_INVALID && !payload_less.empty()) text += payload_less_note(payload_less);
    write_message(message, message_capacity, code == CONNX_OK ? std::string() : text);
    return code;
}

extern "C" void connx_free(void *pointer) {
    std::free(pointer);
}

extern "C" const char *connx_onnx_version(void) {
    return onnx::LAST_RELEASE_VERSION;
}

extern "C" int connx_max_supported_ir_version(void) {
    return static_cast<int>(onnx::Version::IR_VERSION);
}

extern "C" int connx_max_supported_opset(const char *domain) {
    try {
        return max_opset_for_domain(domain == nullptr ? std::string() : std::string(domain));
    } catch (...) {
        return -1;
    }
}
