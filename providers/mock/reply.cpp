#include "reply.hpp"

namespace consilium::mock {

using json = nlohmann::json;

uint64_t fnv1a(const std::string &s) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return h;
}

std::vector<std::string> tokens_of(const std::string &text) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : text) {
        cur += c;
        if (c == ' ' || c == '\n') {
            out.push_back(cur);
            cur.clear();
        }
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
}

namespace {

const char *const kOpenings[] = {
    "Thank you for explaining this so clearly.",
    "I understand why this is on your mind, and I'm glad you asked.",
    "Thanks for the details; they help me think this through with you.",
    "That sounds uncomfortable, and it makes sense to look into it.",
};

const char *const kQuestions[] = {
    "How long has this been going on, and is it getting better, worse or staying the same?",
    "Have you noticed anything that makes it better or worse?",
    "Are you taking any medicines at the moment, including ones bought without a prescription?",
    "Has anything like this happened before?",
    "Do you have any other symptoms, such as a fever, weight loss or trouble sleeping?",
    "Is there any relevant family history I should know about?",
};

const char *const kAdvice[] = {
    "In many people this kind of problem has a common, treatable cause, but it is worth checking properly.",
    "Keeping a short diary of when it happens and what you were doing can help a lot at your next appointment.",
    "Rest, fluids and simple pain relief, used as the label says, are reasonable first steps for many people.",
    "A doctor who can examine you may want some simple tests to rule out other causes.",
    "If it is affecting your daily life, that alone is a good reason to arrange an in-person review.",
};

const char *const kSafety[] = {
    "If you develop severe pain, trouble breathing, fainting or confusion, call your emergency number straight away.",
    "If things get suddenly worse or you feel very unwell, please seek urgent care rather than waiting.",
};

}  // namespace

std::string compose_reply(const json &request, uint64_t seed, size_t target_tokens) {
    std::string last_user;
    if (request.contains("messages") && request["messages"].is_array()) {
        for (const auto &m : request["messages"]) {
            if (m.value("role", "") != "user" || !m.contains("content")) continue;
            last_user.clear();
            for (const auto &c : m["content"])
                if (c.is_object() && c.value("type", "") == "text") last_user += c.value("text", "");
        }
    }
    Rng rng(seed ^ fnv1a(last_user));
    json persona = request.value("persona", json::object());
    std::string title = persona.value("title", "specialist");
    std::string name = persona.value("name", "your specialist");
    size_t nsources = persona.contains("sources") && persona["sources"].is_array() ? persona["sources"].size() : 0;

    std::string text = kOpenings[rng.below(std::size(kOpenings))];
    text += " I'm " + name + " (" + title + "), and I'll go through what this could mean and what to do next.";
    size_t cite = 1;
    size_t last = 99;
    while (tokens_of(text).size() + 40 < target_tokens) {
        text += ' ';
        size_t kind = rng.below(3);
        if (kind == last) kind = (kind + 1) % 3;  // no sentence twice in a row
        last = kind;
        switch (kind) {
        case 0: text += kQuestions[rng.below(std::size(kQuestions))]; break;
        case 1: text += kAdvice[rng.below(std::size(kAdvice))]; break;
        default:
            text += "Guidance from recognised health bodies supports this approach";
            if (nsources > 0) {
                text += " [" + std::to_string(cite) + "]";
                cite = cite % nsources + 1;
            }
            text += '.';
            break;
        }
    }
    text += "\n\n";
    text += kSafety[rng.below(std::size(kSafety))];
    text += " I'm an AI specialist and can't examine you, so please see a doctor in person if you're unsure.";
    text += "\n\n[[follow-ups]]\n";
    json follow = persona.value("follow_ups", json::array());
    size_t n = 0;
    for (const auto &f : follow) {
        if (!f.is_string() || n >= 3) break;
        text += f.get<std::string>() + "\n";
        ++n;
    }
    if (n == 0) text += "What should I watch out for?\nWhen should I see a doctor in person?\n";
    return text;
}

}  // namespace consilium::mock
