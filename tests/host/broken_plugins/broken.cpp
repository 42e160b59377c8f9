// One source, several broken plugins: each BROKEN_* macro breaks one thing.
#include <consilium/sdk/core.hpp>

namespace {

#include <stdexcept>

cs_status stream_start(void *, cs_str, const cs_stream_sink *sink, cs_stream **out, cs_error *err) {
#if defined(BROKEN_DOUBLE_END)
    // Breaks "exactly one terminal event": ends the stream twice.
    static int handle;
    cs_stream_event e{};
    e.struct_size = sizeof e;
    e.type = CS_EV_TEXT;
    e.text = {"hi", 2};
    sink->on_event(sink->ctx, &e);
    e.type = CS_EV_END;
    e.stop_reason = CS_STOP_END_TURN;
    sink->on_event(sink->ctx, &e);
    sink->on_event(sink->ctx, &e);
    *out = reinterpret_cast<cs_stream *>(&handle);
    (void)err;
    return CS_OK;
#elif defined(BROKEN_THROWS)
    // Breaks "no exception crosses the boundary".
    (void)sink;
    (void)out;
    (void)err;
    throw std::runtime_error("an exception escaping the plugin");
#else
    (void)sink;
    (void)out;
    consilium::sdk::set_error(err, "broken plugin");
    return CS_E_UNSUPPORTED;
#endif
}
void stream_cancel(void *, cs_stream *) {}
void stream_release(void *, cs_stream *) {}

cs_status create(const cs_host_api *, cs_str, cs_str, void **out, cs_error *err) {
#ifdef BROKEN_INIT_FAILS
    consilium::sdk::set_error(err, "cannot reach the license server; set options.license_file");
    (void)out;
    return CS_E_INVALID;
#else
    (void)err;
    static int instance;
    *out = &instance;
    return CS_OK;
#endif
}
void destroy(void *) {}

#ifdef BROKEN_SMALL_VTABLE
const cs_provider_vtable vtable{sizeof(uint32_t) * 2, &stream_start, &stream_cancel, &stream_release,
                                nullptr, nullptr, nullptr, nullptr, nullptr};
#else
// A table of the 1.0 size: the voice entries (1.1) are absent, which the host must respect.
const cs_provider_vtable vtable{CS_PROVIDER_VTABLE_SIZE_1_0, &stream_start, &stream_cancel, &stream_release,
                                nullptr, nullptr, nullptr, nullptr, nullptr};
#endif

#if defined(BROKEN_WRONG_MAJOR)
constexpr uint32_t kMajor = CS_ABI_MAJOR + 98, kMinor = 0;
#elif defined(BROKEN_NEWER_MINOR)
constexpr uint32_t kMajor = CS_ABI_MAJOR, kMinor = CS_ABI_MINOR + 7;
#else
constexpr uint32_t kMajor = CS_ABI_MAJOR, kMinor = CS_ABI_MINOR;
#endif

#if defined(BROKEN_DUPLICATE_A) || defined(BROKEN_DUPLICATE_B)
#define ID "twin"
#else
#define ID "broken"
#endif

const cs_plugin_descriptor descriptor = {kMajor,  kMinor,  sizeof(cs_plugin_descriptor), CS_PLUGIN_PROVIDER,
                                         ID,      "0.0.1", CONSILIUM_BUILD_SIGNATURE,    "a deliberately broken plugin",
                                         &create, &destroy, &vtable};

}  // namespace

#ifdef BROKEN_NULL_DESCRIPTOR
extern "C" const cs_plugin_descriptor *consilium_plugin_entry_v1_fn(void) { return nullptr; }
BOOST_DLL_ALIAS(consilium_plugin_entry_v1_fn, consilium_plugin_entry_v1)
#else
CONSILIUM_EXPORT_DESCRIPTOR(descriptor)
#endif
