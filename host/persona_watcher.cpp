#include "persona_watcher.hpp"

#include "util/log.hpp"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

namespace consilium::host {

PersonaWatcher::PersonaWatcher(std::filesystem::path dir, std::function<void()> on_change,
                               std::chrono::milliseconds settle)
    : dir_(std::move(dir)), on_change_(std::move(on_change)), settle_(settle) {
    fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ < 0 || ::inotify_add_watch(fd_, dir_.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
                                                              IN_CREATE | IN_DELETE) < 0) {
        log::warn("personas", "cannot watch the persona folder; reload with SIGHUP", {{"dir", dir_.string()}});
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
        return;
    }
    thread_ = std::thread([this] { run(); });
}

PersonaWatcher::~PersonaWatcher() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
}

void PersonaWatcher::run() {
    using clock = std::chrono::steady_clock;
    bool pending = false;
    clock::time_point last{};
    alignas(inotify_event) char buf[8192];
    while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        int n = ::poll(&p, 1, 100);
        if (n > 0 && (p.revents & POLLIN)) {
            ssize_t len;
            while ((len = ::read(fd_, buf, sizeof buf)) > 0) {
                for (char *ptr = buf; ptr < buf + len;) {
                    auto *ev = reinterpret_cast<inotify_event *>(ptr);
                    std::string name = ev->len ? ev->name : "";
                    auto ext = std::filesystem::path(name).extension();
                    if (ext == ".yaml" || ext == ".lua") {
                        pending = true;
                        last = clock::now();
                    }
                    ptr += sizeof(inotify_event) + ev->len;
                }
            }
        }
        if (pending && clock::now() - last >= settle_) {
            pending = false;
            on_change_();
        }
    }
}

}  // namespace consilium::host
