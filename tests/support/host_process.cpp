#include "host_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace consilium::test {

namespace {
std::string slurp(const std::filesystem::path &p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}
}  // namespace

HostProcess::HostProcess(std::vector<std::string> sets, std::filesystem::path data_dir, std::vector<std::string> extra)
    : sets_(std::move(sets)), extra_(std::move(extra)) {
    std::random_device rd;
    work_ = std::filesystem::temp_directory_path() / ("consilium-host-" + std::to_string(rd()));
    std::filesystem::create_directories(work_);
    if (data_dir.empty()) {
        data_dir_ = work_ / "data";
        own_dir_ = true;
    } else {
        data_dir_ = data_dir;
    }
}

HostProcess::~HostProcess() {
    if (running()) {
        kill();
    }
    std::error_code ec;
    std::filesystem::remove_all(work_, ec);
}

bool HostProcess::running() const {
    if (pid_ <= 0) return false;
    int status = 0;
    return ::waitpid(pid_, &status, WNOHANG) == 0;
}

bool HostProcess::start(std::chrono::milliseconds timeout) {
    ++runs_;
    auto out = work_ / ("stdout." + std::to_string(runs_));
    auto err = work_ / ("stderr." + std::to_string(runs_));
    std::vector<std::string> args = {CONSILIUM_TEST_HOST_BINARY, "serve", "--listen", "127.0.0.1:0",
                                     "--data-dir", data_dir_.string()};
    for (const auto &s : sets_) {
        args.push_back("--set");
        args.push_back(s);
    }
    for (const auto &e : extra_) args.push_back(e);
    pid_t pid = ::fork();
    if (pid == 0) {
        int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ::dup2(o, 1);
        ::dup2(e, 2);
        std::vector<char *> argv;
        for (auto &a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    pid_ = pid;
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
        std::string text = slurp(out);
        auto pos = text.find("serving http://");
        if (pos != std::string::npos) {
            auto end = text.find('/', pos + 15);
            std::string addr = text.substr(pos + 15, end - pos - 15);
            port_ = static_cast<uint16_t>(std::stoi(addr.substr(addr.rfind(':') + 1)));
            return true;
        }
        if (!running()) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

int HostProcess::stop(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
        int status = 0;
        pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            pid_ = -1;
            if (WIFEXITED(status)) return WEXITSTATUS(status);
            if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
}

void HostProcess::kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
}

std::string HostProcess::stdout_text() const { return slurp(work_ / ("stdout." + std::to_string(runs_))); }
std::string HostProcess::stderr_text() const { return slurp(work_ / ("stderr." + std::to_string(runs_))); }

}  // namespace consilium::test

namespace consilium::test {

long HostProcess::rss_kib() const {
    if (pid_ <= 0) return -1;
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

}  // namespace consilium::test
