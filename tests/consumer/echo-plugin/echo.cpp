// A provider plugin that echoes the patient's last message: the smallest complete example of
// the provider contract (docs/plugins.md).
#include <consilium/sdk/provider.hpp>

using consilium::sdk::json;

namespace {

class EchoStream : public consilium::sdk::Stream {
public:
    void cancel() override {}
};

class Echo : public consilium::sdk::Provider {
public:
    static json defaults() { return {{"prefix", "echo: "}}; }
    Echo(consilium::sdk::Host, const std::string &, const json &options) : prefix_(options["prefix"]) {}

    std::unique_ptr<consilium::sdk::Stream> start(const json &request, consilium::sdk::StreamSink sink) override {
        if (!request.contains("messages") || !request["messages"].is_array() || request["messages"].empty())
            throw consilium::sdk::Error(CS_E_INVALID, "echo: the request has no messages");
        std::string text;
        const json &last = request["messages"].back();
        if (last.contains("content") && last["content"].is_array())
            for (const auto &c : last["content"])
                if (c.is_object() && c.value("type", "") == "text") text += c.value("text", "");
        sink.model(request.value("model", "echo"));
        sink.text(prefix_ + text);
        sink.usage(1, 1);
        sink.end(CS_STOP_END_TURN);
        return std::make_unique<EchoStream>();
    }

private:
    std::string prefix_;
};

}  // namespace

CONSILIUM_PROVIDER_PLUGIN(Echo, "echo", "1.0.0", "Echoes the patient's last message")
