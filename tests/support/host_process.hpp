// Runs the real `consilium serve` as a child process for integration tests: a fresh data dir,
// port 0 (the host prints the port it got), stdout/stderr captured to files, SIGTERM and wait.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace consilium::test {

class HostProcess {
public:
    // `sets`: --set KEY=VALUE pairs; data_dir: reused across restarts when given.
    explicit HostProcess(std::vector<std::string> sets = {}, std::filesystem::path data_dir = {},
                         std::vector<std::string> extra_args = {});
    ~HostProcess();
    HostProcess(const HostProcess &) = delete;
    HostProcess &operator=(const HostProcess &) = delete;

    // Starts and waits for "serving http://HOST:PORT/". False (with log()) when it did not come.
    bool start(std::chrono::milliseconds timeout = std::chrono::seconds(30));
    // SIGTERM, then waits; returns the exit code (-1 on timeout, 128+sig when killed by a signal).
    int stop(std::chrono::milliseconds timeout = std::chrono::seconds(30));
    void kill();  // SIGKILL: a crash
    bool running() const;

    uint16_t port() const { return port_; }
    int pid() const { return pid_; }
    // The process's resident memory (VmRSS) in KiB, or -1.
    long rss_kib() const;
    const std::filesystem::path &data_dir() const { return data_dir_; }
    std::string stdout_text() const;
    std::string stderr_text() const;
    std::string log() const { return stderr_text(); }

private:
    std::vector<std::string> sets_;
    std::vector<std::string> extra_;
    std::filesystem::path data_dir_;
    std::filesystem::path work_;
    bool own_dir_ = false;
    int pid_ = -1;
    uint16_t port_ = 0;
    int runs_ = 0;
};

}  // namespace consilium::test
