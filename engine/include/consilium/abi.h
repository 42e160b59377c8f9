/*
 * consilium/abi.h: the plugin ABI of the Consilium host.
 *
 * C only: POD structs, enums and function pointers. No C++ type and no exception crosses this
 * boundary (Boost.DLL guarantees no C++ ABI). Plugins written in C++ include consilium/sdk.hpp,
 * which wraps this header with RAII and catches exceptions inside every thunk.
 *
 * Compatibility rules (see docs/plugins.md):
 *  - A plugin built for another CS_ABI_MAJOR is refused. A plugin built for a newer CS_ABI_MINOR
 *    than the host's is refused; an older minor is accepted.
 *  - Structs only grow at their end. Every struct that may grow starts with `struct_size`, which
 *    the reader checks before touching a field added later.
 *  - tests/engine/abi_hash_test.cpp hashes this file and consilium/storage_ops.h: a change to
 *    either without a version bump fails the build's tests.
 *  - The host keeps a plugin's shared library loaded until every call it makes into the
 *    plugin's callbacks (respond functions, sinks) has returned, including late ones.
 *
 * Ownership is in the names: a `*_plugin_ptr` is owned by the plugin, a `*_host_ptr` by the host.
 * Every string is a (data, size) pair, UTF-8, not necessarily NUL-terminated, and borrowed for the
 * duration of the call only unless a LIFETIME line says otherwise.
 */
#ifndef CONSILIUM_ABI_H
#define CONSILIUM_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CS_ABI_MAJOR 1
#define CS_ABI_MINOR 2

/* The Boost.DLL alias every plugin exports; see CONSILIUM_PLUGIN in sdk.hpp. */
#define CS_PLUGIN_ENTRY_NAME "consilium_plugin_entry_v1"

/* ---------------------------------------------------------------------------------------------
 * Common types
 * ------------------------------------------------------------------------------------------- */

typedef enum cs_status {
    CS_OK = 0,
    CS_E_INVALID = 1,     /* bad argument or configuration */
    CS_E_UNSUPPORTED = 2, /* operation not implemented by this plugin */
    CS_E_NOT_FOUND = 3,
    CS_E_CONFLICT = 4,    /* uniqueness violated (idempotency keys, e-mail already taken) */
    CS_E_BUSY = 5,        /* try again later */
    CS_E_IO = 6,          /* disk, network or database failure */
    CS_E_INTERNAL = 7     /* a bug; the message says where */
} cs_status;

typedef struct cs_str {
    const char *data;
    size_t size;
} cs_str;

/* An error message written by the callee into a buffer owned by the caller.
 * LIFETIME: caller-owned, valid for the call. The callee writes a NUL-terminated message that
 * names what failed and, where it can, what to do. It never contains health data. */
#define CS_ERROR_CAPACITY 1024
typedef struct cs_error {
    char message[CS_ERROR_CAPACITY];
} cs_error;

typedef enum cs_log_level {
    CS_LOG_DEBUG = 0,
    CS_LOG_INFO = 1,
    CS_LOG_WARN = 2,
    CS_LOG_ERROR = 3
} cs_log_level;

typedef enum cs_plugin_kind {
    CS_PLUGIN_PROVIDER = 1,
    CS_PLUGIN_TRANSPORT = 2,
    CS_PLUGIN_STORAGE = 3
} cs_plugin_kind;

typedef enum cs_metric_kind {
    CS_METRIC_COUNTER = 1,
    CS_METRIC_GAUGE = 2,
    CS_METRIC_HISTOGRAM = 3 /* seconds; default latency buckets */
} cs_metric_kind;

/* Opaque handles. */
typedef struct cs_host_ctx cs_host_ctx; /* one per plugin instance, owned by the host */
typedef struct cs_timer cs_timer;       /* owned by the host */
typedef struct cs_metric cs_metric;     /* owned by the host, lives as long as the host */
typedef struct cs_chat cs_chat;         /* a chat session, owned by the host */
typedef struct cs_stream cs_stream;     /* a provider stream, owned by the plugin */

typedef void (*cs_task_fn)(void *arg);
/* Runs exactly once: when the timer fires (cancelled = 0) or when it is cancelled (cancelled = 1). */
typedef void (*cs_timer_fn)(void *arg, int cancelled);

/* ---------------------------------------------------------------------------------------------
 * Front API: what a transport plugin calls to hand requests to the engine.
 * ------------------------------------------------------------------------------------------- */

typedef struct cs_header {
    cs_str name;
    cs_str value;
} cs_header;

typedef struct cs_http_request {
    uint32_t struct_size;
    cs_str method;  /* "GET", "POST", ... */
    cs_str target;  /* path with query, e.g. "/v1/consultations?profile_id=p1" */
    cs_str body;
    const cs_header *headers;
    size_t header_count;
    cs_str peer;    /* remote address "ip:port" */
} cs_http_request;

typedef struct cs_http_response {
    uint32_t struct_size;
    int status;
    cs_str content_type;
    cs_str body;
    const cs_header *headers; /* extra headers, e.g. Retry-After */
    size_t header_count;
} cs_http_response;

/* Called exactly once per request, from any thread. The response is borrowed for the call. */
typedef void (*cs_http_respond_fn)(void *respond_ctx, const cs_http_response *response);

/* How the engine talks back to one chat connection.
 * LIFETIME: ctx must stay valid until chat_close() returns; after it returns the engine never
 * calls the sink again. send and close may be called from any thread, never concurrently for
 * one chat. */
typedef struct cs_chat_sink {
    uint32_t struct_size;
    void *ctx;
    /* Queues one text frame. Returns the bytes now queued on the connection (after this frame),
     * or -1 if the connection is closing and the frame was dropped. */
    int64_t (*send)(void *ctx, cs_str frame);
    /* Closes the connection with a close code and a short reason (at most 123 bytes). Codes:
     * 1000 normal, 1001 going away (shutdown), 1008 policy (limits), 1009 too big, 1011 server
     * error, 1013 try again later, 4000-4999 application codes of docs/protocol.md. */
    void (*close)(void *ctx, int code, cs_str reason);
} cs_chat_sink;

typedef struct cs_chat_open_params {
    uint32_t struct_size;
    cs_str bearer_token; /* from the upgrade's Authorization header, or empty */
    cs_str peer;         /* "ip:port" */
    cs_str origin;       /* Origin header, or empty */
    cs_str transport;    /* "websocket", "sse", ... for metrics */
    cs_str target;       /* the request target with its query, e.g. "/v1/chat?locale=ar" */
    const cs_header *headers; /* every request header of the upgrade */
    size_t header_count;
} cs_chat_open_params;

typedef struct cs_front_api {
    uint32_t struct_size;
    /* One HTTP request (everything but the chat upgrade and static files). */
    void (*http)(cs_host_ctx *ctx, const cs_http_request *request, cs_http_respond_fn respond,
                 void *respond_ctx);
    /* Opens a chat session; never returns NULL. */
    cs_chat *(*chat_open)(cs_host_ctx *ctx, const cs_chat_open_params *params,
                          const cs_chat_sink *sink);
    /* One text frame from the client. */
    void (*chat_frame)(cs_chat *chat, cs_str frame);
    /* The connection is gone (or closing). The session is freed; see cs_chat_sink's LIFETIME. */
    void (*chat_close)(cs_chat *chat);
    /* 1 while the host accepts new work, 0 once it drains (SIGTERM). */
    int (*accepting)(cs_host_ctx *ctx);
    /* Backpressure: the connection's send queue, which had grown past the transport's high-water
     * mark, has drained to queued_bytes (below its low-water mark). Optional for transports. */
    void (*chat_drained)(cs_chat *chat, int64_t queued_bytes);
} cs_front_api;

/* ---------------------------------------------------------------------------------------------
 * Host services: the table the host hands every plugin instance.
 * LIFETIME: valid from create() until destroy() returns.
 * ------------------------------------------------------------------------------------------- */

typedef struct cs_host_api {
    uint32_t struct_size;
    uint32_t abi_major;
    uint32_t abi_minor;
    cs_host_ctx *ctx;

    /* Logging. The message must carry no health data: ids, codes and counts only. */
    void (*log)(cs_host_ctx *ctx, cs_log_level level, cs_str message);

    /* Clock. */
    int64_t (*now_unix_ms)(cs_host_ctx *ctx);
    int64_t (*monotonic_ns)(cs_host_ctx *ctx);

    /* Executor: the host's worker pool. fn runs once, on some worker thread. */
    void (*post)(cs_host_ctx *ctx, cs_task_fn fn, void *arg);
    /* A one-shot timer; see cs_timer_fn. The handle is valid until fn has run. */
    cs_timer *(*timer_start)(cs_host_ctx *ctx, uint64_t delay_ms, cs_timer_fn fn, void *arg);
    /* Cancels a timer whose fn has not run yet; fn then runs with cancelled = 1. A no-op once
     * fn started. */
    void (*timer_cancel)(cs_host_ctx *ctx, cs_timer *timer);

    /* Metrics, exported on /metrics as consilium_<name>. Same name twice returns the same metric. */
    cs_metric *(*metric)(cs_host_ctx *ctx, cs_metric_kind kind, cs_str name, cs_str help);
    void (*metric_add)(cs_metric *metric, double value);     /* counter, gauge */
    void (*metric_set)(cs_metric *metric, double value);     /* gauge */
    void (*metric_observe)(cs_metric *metric, double value); /* histogram */

    /* For transport plugins only; NULL for the other kinds. */
    const cs_front_api *front;

    /* Absolute directory for this plugin's files (data dir), NUL-terminated. */
    const char *data_dir;
} cs_host_api;

/* ---------------------------------------------------------------------------------------------
 * Provider plugins: stream one model completion.
 * ------------------------------------------------------------------------------------------- */

typedef enum cs_stop_reason {
    CS_STOP_END_TURN = 1,
    CS_STOP_MAX_TOKENS = 2,
    CS_STOP_STOP_SEQUENCE = 3,
    CS_STOP_REFUSAL = 4,           /* the model declined: content filter, policy */
    CS_STOP_CANCELLED = 5,         /* stream_cancel() was called */
    CS_STOP_CONTEXT_EXCEEDED = 6   /* model_context_window_exceeded: the answer is cut off */
} cs_stop_reason;

/* Why a stream failed. The connector's decisions (retry, fall back, give up) key on this. */
typedef enum cs_error_kind {
    CS_ERR_RATE_LIMITED = 1,     /* 429; retry_after_ms when the provider said */
    CS_ERR_OVERLOADED = 2,       /* 529, overloaded_error, 503 */
    CS_ERR_SERVER = 3,           /* other 5xx, api_error */
    CS_ERR_TIMEOUT = 4,          /* connect or upstream timeout (504) */
    CS_ERR_CONNECTION = 5,       /* reset, refused, closed mid-stream */
    CS_ERR_CONTEXT_TOO_LONG = 6, /* the request does not fit this model's window (413 too) */
    CS_ERR_CONTENT_FILTER = 7,   /* refused by a content policy before answering */
    CS_ERR_AUTH = 8,             /* 401, 403, billing: operator must act */
    CS_ERR_BAD_REQUEST = 9,      /* 400 other than the above: do not retry this request here */
    CS_ERR_NOT_FOUND = 10,       /* unknown model */
    CS_ERR_PROTOCOL = 11,        /* malformed or truncated stream */
    CS_ERR_INTERNAL = 12         /* a bug in the plugin */
} cs_error_kind;

typedef enum cs_stream_event_type {
    CS_EV_TEXT = 1,     /* text: a delta of the answer */
    CS_EV_CITATION = 2, /* text: JSON {"title", "url", "cited_text"?, "n"?} */
    CS_EV_USAGE = 3,    /* input_tokens, output_tokens: cumulative so far */
    CS_EV_MODEL = 4,    /* text: the upstream model that actually answers */
    CS_EV_END = 5,      /* terminal: stop_reason */
    CS_EV_ERROR = 6     /* terminal: error_kind, http_status, retry_after_ms, text = message */
} cs_stream_event_type;

typedef struct cs_stream_event {
    uint32_t struct_size;
    uint32_t type;        /* cs_stream_event_type */
    cs_str text;
    uint32_t stop_reason; /* cs_stop_reason, CS_EV_END */
    uint32_t error_kind;  /* cs_error_kind, CS_EV_ERROR */
    int32_t http_status;  /* CS_EV_ERROR, 0 when none */
    int64_t retry_after_ms; /* CS_EV_ERROR, -1 when the provider did not say */
    int64_t input_tokens;
    int64_t output_tokens;
} cs_stream_event;

/* LIFETIME: ctx stays valid until the terminal event (END or ERROR) has been delivered.
 * Events for one stream are delivered one at a time, in order, from any thread; exactly one
 * terminal event ends every started stream, and nothing follows it. */
typedef struct cs_stream_sink {
    uint32_t struct_size;
    void *ctx;
    void (*on_event)(void *ctx, const cs_stream_event *event);
} cs_stream_sink;

/* Receives a JSON document written by a plugin (borrowed for the call). */
typedef void (*cs_json_out_fn)(void *ctx, cs_str json);

typedef struct cs_relay cs_relay; /* a voice relay, owned by the plugin */

/* How a voice relay hands frames back (ABI 1.1).
 * LIFETIME: ctx stays valid until on_close has been delivered; exactly one on_close ends every
 * opened relay, and nothing follows it. Calls come one at a time, from any thread. */
typedef struct cs_relay_sink {
    uint32_t struct_size;
    void *ctx;
    void (*on_frame)(void *ctx, cs_str frame);  /* one JSON text frame from the provider */
    void (*on_close)(void *ctx, int code, cs_str reason);
} cs_relay_sink;

typedef struct cs_provider_vtable {
    uint32_t struct_size;
    /* Starts one streamed completion. request_json is the model request documented in
     * docs/plugins.md. On CS_OK, *stream_plugin_ptr identifies the stream and events follow on
     * the sink (possibly before this returns). On an error no event is ever delivered. */
    cs_status (*stream_start)(void *instance, cs_str request_json, const cs_stream_sink *sink,
                              cs_stream **stream_plugin_ptr, cs_error *err);
    /* Asks a stream to stop. The plugin then delivers CS_EV_END with CS_STOP_CANCELLED (or the
     * terminal event already under way) promptly. Safe from any thread, idempotent. */
    void (*stream_cancel)(void *instance, cs_stream *stream);
    /* Frees the stream. Called once by the host, after the terminal event has been delivered. */
    void (*stream_release)(void *instance, cs_stream *stream);

    /* ---- ABI 1.1: realtime voice. A plugin without voice returns CS_E_UNSUPPORTED. ---------
     * request_json (both calls): {"model", "instructions", "voice", "turn_detection": {...},
     * "input_audio_transcription": {...}, "expires_after_s"} (docs/plugins.md, "Voice"). */

    /* Mints a short-lived credential with which a browser opens the realtime session itself
     * (WebRTC). On CS_OK, respond has been called exactly once, before returning, with
     * {"client_secret", "expires_at", "model", "voice", "webrtc_url"}. */
    cs_status (*voice_session)(void *instance, cs_str request_json, cs_json_out_fn respond, void *respond_ctx,
                               cs_error *err);
    /* Opens a server-side relay to the realtime service (a WebSocket there); JSON text frames
     * both ways. On CS_OK, frames and exactly one on_close follow on the sink. */
    cs_status (*relay_open)(void *instance, cs_str request_json, const cs_relay_sink *sink,
                            cs_relay **relay_plugin_ptr, cs_error *err);
    /* Sends one client frame upstream; from any thread; dropped once the relay is closing. */
    void (*relay_send)(void *instance, cs_relay *relay, cs_str frame);
    /* Begins closing; on_close follows (if it has not come already). Idempotent. */
    void (*relay_close)(void *instance, cs_relay *relay);
    /* Frees the relay. Called once by the host, after on_close was delivered, never from
     * inside a sink callback. */
    void (*relay_release)(void *instance, cs_relay *relay);
} cs_provider_vtable;

/* The size of the 1.0 provider table: older plugins provide only this much. */
#define CS_PROVIDER_VTABLE_SIZE_1_0 offsetof(cs_provider_vtable, voice_session)

/* ---------------------------------------------------------------------------------------------
 * Transport plugins: accept clients and hand them to the front API.
 * ------------------------------------------------------------------------------------------- */

typedef struct cs_transport_vtable {
    uint32_t struct_size;
    /* Binds and starts accepting. Writes the bound "host:port" (NUL-terminated) to address. */
    cs_status (*start)(void *instance, char *address, size_t address_capacity, cs_error *err);
    /* Stops accepting new connections; open ones continue (drain). */
    void (*stop_accepting)(void *instance);
    /* Closes every connection (close code 1001, "going away") and stops all threads. */
    void (*stop)(void *instance);
} cs_transport_vtable;

/* ---------------------------------------------------------------------------------------------
 * Storage plugins: execute the operations of consilium/storage_ops.h.
 * ------------------------------------------------------------------------------------------- */

typedef enum cs_value_type {
    CS_VAL_NULL = 0,
    CS_VAL_INT = 1,
    CS_VAL_TEXT = 2,
    CS_VAL_BLOB = 3
} cs_value_type;

typedef struct cs_value {
    uint32_t type;  /* cs_value_type */
    int64_t i;      /* CS_VAL_INT */
    cs_str s;       /* CS_VAL_TEXT, CS_VAL_BLOB */
} cs_value;

/* Receives result rows. Values are borrowed for the call. Returning non-zero stops the scan. */
typedef struct cs_row_sink {
    void *ctx;
    int (*row)(void *ctx, const cs_value *columns, size_t column_count);
} cs_row_sink;

typedef struct cs_storage_op {
    uint32_t op;             /* cs_storage_op_id, see storage_ops.h */
    const cs_value *params;
    size_t param_count;
    const cs_row_sink *rows; /* NULL when the caller wants no rows */
} cs_storage_op;

typedef struct cs_storage_vtable {
    uint32_t struct_size;
    /* Executes ops in order as one transaction: all or nothing. Safe to call from several
     * threads at once. On failure nothing of the batch is kept and err says which op failed. */
    cs_status (*exec)(void *instance, const cs_storage_op *ops, size_t op_count, cs_error *err);
} cs_storage_vtable;

/* ---------------------------------------------------------------------------------------------
 * The descriptor: what a plugin's entry point returns.
 * ------------------------------------------------------------------------------------------- */

typedef struct cs_plugin_descriptor {
    uint32_t abi_major;       /* CS_ABI_MAJOR the plugin was built against */
    uint32_t abi_minor;       /* CS_ABI_MINOR the plugin was built against */
    uint32_t struct_size;     /* sizeof(cs_plugin_descriptor) as the plugin knows it */
    uint32_t kind;            /* cs_plugin_kind */
    const char *id;           /* e.g. "mock", "sqlite", "beast": what configuration names */
    const char *version;      /* the plugin's own version */
    const char *build_signature; /* compiler, SDK and build type, for `consilium plugin list` */
    const char *description;

    /* Creates an instance. options_json is the instance's configuration object (with the
     * `plugin` key removed). Must validate it and refuse unknown keys, naming each by its path
     * under config_path (e.g. "providers.mock.faults.rate_limit"). */
    cs_status (*create)(const cs_host_api *host, cs_str config_path, cs_str options_json,
                        void **instance_plugin_ptr, cs_error *err);
    /* Destroys an instance; after it returns the plugin calls no host function for it. */
    void (*destroy)(void *instance);

    /* The kind's function table: cs_provider_vtable, cs_transport_vtable or cs_storage_vtable. */
    const void *vtable;
} cs_plugin_descriptor;

/* The entry point's type. */
typedef const cs_plugin_descriptor *(*cs_plugin_entry_fn)(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CONSILIUM_ABI_H */
