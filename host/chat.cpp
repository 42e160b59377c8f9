// `consilium chat`: a terminal consultation with the same engine the server runs (storage,
// providers, personas, coordinator), for persona authors trying a specialist by hand.
#include "args.hpp"
#include "commands.hpp"
#include "runtime.hpp"
#include "util/log.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <mutex>
#include <random>

namespace consilium::host {

using json = nlohmann::json;

ConfigSources config_sources(const Args &a);

namespace {

// Prints a consultation's events as they come.
class Terminal : public Subscriber {
public:
    void deliver(const std::shared_ptr<const std::string> &frame) override {
        json f = json::parse(*frame, nullptr, false);
        if (!f.is_object()) return;
        std::lock_guard<std::mutex> lock(mu_);
        std::string type = f.value("type", "");
        if (f.contains("consultation_id")) consultation_ = f["consultation_id"];
        if (type == "emergency") {
            std::printf("\n!! %s\n", f.value("message", "").c_str());
            for (const auto &n : f["numbers"])
                std::printf("   %s  %s\n", n.value("number", "").c_str(), n.value("label", "").c_str());
        } else if (type == "stream_start") {
            const json &s = f["specialist"];
            std::printf("\n%s, %s (%s)\n", s.value("name", "").c_str(), s.value("title", "").c_str(),
                        s.value("id", "").c_str());
        } else if (type == "stream_chunk") {
            std::fputs(f.value("text", "").c_str(), stdout);
        } else if (type == "stream_restart") {
            std::printf("\n[the answer starts over: %s]\n", f.value("reason", "").c_str());
        } else if (type == "stream_end") {
            std::string reason = f.value("stop_reason", "");
            if (reason != "end_turn") std::printf("\n[%s%s]", reason.c_str(),
                                                  f.contains("error") ? (": " + f["error"].value("code", "")).c_str() : "");
            std::printf("\n");
            for (const auto &c : f["citations"])
                std::printf("  [%s] %s %s\n", c.contains("n") ? c["n"].dump().c_str() : "*", c.value("title", "").c_str(),
                            c.value("url", "").c_str());
            if (!f["follow_ups"].empty()) {
                std::printf("  You could ask:\n");
                for (const auto &q : f["follow_ups"]) std::printf("   - %s\n", q.get<std::string>().c_str());
            }
            done_ = true;
            cv_.notify_all();
        }
        std::fflush(stdout);
    }
    void reply(const json &frame) override {
        std::lock_guard<std::mutex> lock(mu_);
        std::printf("\n[error %s: %s]\n", frame.value("code", "").c_str(), frame.value("message", "").c_str());
        std::fflush(stdout);
        done_ = true;
        cv_.notify_all();
    }
    void reset() {
        std::lock_guard<std::mutex> lock(mu_);
        done_ = false;
    }
    bool wait(std::chrono::seconds limit) {
        std::unique_lock<std::mutex> lock(mu_);
        return cv_.wait_for(lock, limit, [this] { return done_; });
    }
    std::string consultation() {
        std::lock_guard<std::mutex> lock(mu_);
        return consultation_;
    }
    void forget() {
        std::lock_guard<std::mutex> lock(mu_);
        consultation_.clear();
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool done_ = false;
    std::string consultation_;
};

std::string birth_date_for(double age_years) {
    std::time_t t = std::time(nullptr) - static_cast<std::time_t>(age_years * 365.2425 * 86400);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return buf;
}

}  // namespace

int cmd_chat(const std::vector<std::string> &argv) {
    Args a = Args::parse(argv, {"config", "set", "data-dir", "personas", "specialist", "age", "sex", "locale"},
                         {"pregnant", "verbose"});
    ConfigSources src = config_sources(a);
    std::filesystem::path temp;
    if (!src.data_dir) {
        temp = std::filesystem::temp_directory_path() / ("consilium-chat-" + std::to_string(std::random_device{}()));
        src.data_dir = temp.string();
    }
    if (auto p = a.get("personas")) src.sets.emplace_back("paths.personas", "\"" + *p + "\"");
    if (!a.has("verbose")) src.sets.emplace_back("log.level", "warn");
    Config cfg = load_config(src);
    int status = 0;
    {
        HostRuntime runtime(std::move(cfg));
        Engine &engine = runtime.engine();
        engine.set_ready(true);
        json guest = engine.accounts().create_guest();
        AuthFailure why;
        auto authenticated = engine.accounts().authenticate(guest["access_token"], why);
        if (!authenticated) throw std::runtime_error("the guest token was refused: " + why.message);
        Principal who = *authenticated;
        std::string profile_id;
        if (a.get("age") || a.get("sex") || a.has("pregnant")) {
            json details = {{"name", "Chat patient"}};
            if (auto age = a.get("age")) details["birth_date"] = birth_date_for(std::stod(*age));
            if (auto sex = a.get("sex")) details["sex"] = *sex;
            if (a.has("pregnant")) details["pregnant"] = true;
            ProfileRecord p = engine.accounts().new_profile(who.account_id, "other", details);
            Batch b;
            Store::profile_insert(b, p);
            engine.store().write(b);
            profile_id = p.id;
        }
        std::string pinned = a.get("specialist").value_or("");
        if (!pinned.empty() && !engine.panel()->find(pinned)) throw UsageError("--specialist: no persona '" + pinned + "'");
        auto term = std::make_shared<Terminal>();
        std::printf("Consilium chat: %zu specialists. Type your message; /new starts over, /quit leaves.\n",
                    engine.panel()->personas.size());
        std::string line;
        int n = 0;
        while (true) {
            std::printf("\n> ");
            std::fflush(stdout);
            if (!std::getline(std::cin, line)) break;
            if (line == "/quit" || line == "/exit") break;
            if (line == "/new") {
                term->forget();
                continue;
            }
            if (line.find_first_not_of(" \t") == std::string::npos) continue;
            Incoming in;
            in.client_id = "chat-" + std::to_string(++n);
            in.text = line;
            in.consultation_id = term->consultation();
            in.profile_id = in.consultation_id.empty() ? profile_id : "";
            in.specialist = pinned;
            in.locale = a.get("locale").value_or("en");
            term->reset();
            engine.service().submit(who, in, term);
            if (!term->wait(std::chrono::seconds(300))) {
                std::printf("\n[no answer within 5 minutes]\n");
                status = 1;
                break;
            }
        }
        std::printf("\n");
    }
    if (!temp.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(temp, ec);
    }
    return status;
}

}  // namespace consilium::host
