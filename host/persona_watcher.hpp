// Watches the persona folder (inotify) and reloads the panel once edits settle. A reload that
// fails keeps the last good panel live (Engine::reload_personas).
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

namespace consilium::host {

class PersonaWatcher {
public:
    // Calls on_change (from its own thread) after changes to *.yaml or *.lua in dir have been
    // quiet for `settle`.
    PersonaWatcher(std::filesystem::path dir, std::function<void()> on_change,
                   std::chrono::milliseconds settle = std::chrono::milliseconds(300));
    ~PersonaWatcher();
    PersonaWatcher(const PersonaWatcher &) = delete;
    PersonaWatcher &operator=(const PersonaWatcher &) = delete;

private:
    void run();

    std::filesystem::path dir_;
    std::function<void()> on_change_;
    std::chrono::milliseconds settle_;
    int fd_ = -1;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace consilium::host
