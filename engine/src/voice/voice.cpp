#include "voice/voice.hpp"

#include "consult/prompt.hpp"
#include "consult/service.hpp"
#include "engine.hpp"
#include "routing/coordinator.hpp"
#include "util/log.hpp"


namespace consilium {

using json = nlohmann::json;

VoiceService::VoiceService(Engine &engine, VoiceSettings settings) : engine_(engine), settings_(std::move(settings)) {}

std::shared_ptr<ProviderClient> VoiceService::provider() const {
    if (settings_.model_alias.empty()) return nullptr;
    const ModelInfo *m = engine_.connector().model(settings_.model_alias);
    if (!m) return nullptr;
    auto p = engine_.provider_client(m->provider);
    if (!p || !p->has_voice_functions()) return nullptr;
    return p;
}

std::optional<VoiceContext> VoiceService::prepare(const Principal &who, const json &params, VoiceError &error) {
    auto provider_client = provider();
    const ModelInfo *model = settings_.model_alias.empty() ? nullptr : engine_.connector().model(settings_.model_alias);
    if (!provider_client || !model) {
        error = {503, "voice_unavailable", "voice consultations are not configured on this server (voice.model)"};
        return std::nullopt;
    }
    auto str = [&](const char *k) -> std::string {
        return params.contains(k) && params[k].is_string() ? params[k].get<std::string>() : "";
    };
    VoiceContext ctx;
    ctx.panel = engine_.panel();
    ctx.locale = str("locale");
    std::string code;
    ctx.consultation = engine_.service().open_for_voice(who, str("consultation_id"), str("profile_id"), code);
    if (!ctx.consultation) {
        if (code == "storage_unavailable") error = {503, code, "storage is unavailable; try again"};
        else error = {404, "not_found", "no such consultation or profile"};
        return std::nullopt;
    }
    std::string pinned = str("specialist");
    if (!pinned.empty()) {
        ctx.persona = ctx.panel->find(pinned);
        if (!ctx.persona) {
            error = {400, "invalid_field", "specialist: no such persona"};
            return std::nullopt;
        }
    }
    if (!ctx.persona && ctx.consultation->record().specialist) ctx.persona = ctx.panel->find(*ctx.consultation->record().specialist);
    if (!ctx.persona) ctx.persona = ctx.panel->entry();
    if (!ctx.persona && !ctx.panel->personas.empty()) ctx.persona = &ctx.panel->personas.front();

    PromptInput in;
    in.persona = ctx.persona;
    in.locale = ctx.locale;
    in.voice = true;
    in.profile = ctx.consultation->load_profile();  // reads storage only; safe off the strand
    ctx.request = {{"model", model->model},
                   {"instructions", build_system_prompt(in)},
                   {"voice", ctx.persona->voice.empty() ? "alloy" : ctx.persona->voice},
                   {"turn_detection", {{"type", "server_vad"}}},
                   {"input_audio_transcription", {{"model", settings_.transcription_model}}},
                   {"expires_after_s", settings_.expires_after_s}};
    return ctx;
}

std::optional<json> VoiceService::mint(const Principal &who, const json &params, VoiceError &error) {
    auto ctx = prepare(who, params, error);
    if (!ctx) return std::nullopt;
    std::string problem;
    cs_status status = CS_OK;
    auto out = provider()->voice_session(ctx->request.dump(), problem, &status);
    if (!out) {
        log::error("voice", "voice session refused by the provider", {{"status", static_cast<int>(status)}});
        error = {status == CS_E_BUSY ? 429 : 502, "voice_provider_error", "the voice service refused the session; try again"};
        return std::nullopt;
    }
    json minted = json::parse(*out, nullptr, false);
    if (!minted.is_object() || !minted.contains("client_secret")) {
        error = {502, "voice_provider_error", "the voice service answered without a credential"};
        return std::nullopt;
    }
    const Persona &p = *ctx->persona;
    engine_.metrics().counter("voice_sessions_total", "Voice sessions minted").add(1);
    return json{{"consultation_id", ctx->consultation->id()},
                {"specialist", {{"id", p.id}, {"name", p.name}, {"title", p.title}}},
                {"client_secret", minted["client_secret"]},
                {"expires_at", minted.value("expires_at", json(nullptr))},
                {"model", minted.value("model", ctx->request["model"])},
                {"voice", minted.value("voice", ctx->request["voice"])},
                {"webrtc_url", minted.value("webrtc_url", "")}};
}

json VoiceService::transcript(const Principal &who, const VoiceContext &ctx, const std::string &role,
                              const std::string &item_id, const std::string &text) {
    // Stored on the consultation's strand; nothing here waits for it (this may run on a
    // provider's I/O thread).
    std::string consultation = ctx.consultation->id();
    engine_.service().voice_item(who, ctx.consultation, role, item_id, text, ctx.persona, ctx.panel,
                                 [consultation](bool ok) {
                                     if (!ok) log::error("voice", "voice transcript not stored", {{"consultation", consultation}});
                                 });
    if (role != "patient") return nullptr;
    // The patient's words go through the same red flags as chat messages.
    RouteRequest req;
    req.text = text;
    RouteDecision d = Coordinator::route_builtin(*ctx.panel, req);
    if (!d.emergency) return nullptr;
    auto c = ctx.consultation;
    std::string locale = ctx.locale;
    c->strand()->post([c, d, locale, item_id] { c->emit_emergency(d, locale, "voice:" + item_id); });
    auto locales = engine_.locales();
    const Locale *loc = locales ? locales->find(locale.empty() ? "en" : locale) : nullptr;
    json numbers = json::array();
    if (loc)
        for (const auto &n : loc->emergency_numbers) numbers.push_back({{"number", n.number}, {"label", n.label}});
    return {{"message", loc ? loc->emergency_message : "Call your local emergency number now."},
            {"numbers", numbers},
            {"flags", d.flags},
            {"label", d.emergency_message}};
}

}  // namespace consilium
