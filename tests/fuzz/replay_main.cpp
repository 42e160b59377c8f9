// A main for the fuzz targets where libFuzzer is not there (the g++ build): runs
// LLVMFuzzerTestOneInput once on every file under the directories (or files) named on the
// command line, in a stable order, so ctest replays the seed corpus and every regression input.
// An invariant violated in a target aborts the process; the last "running" line names the input.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

namespace fs = std::filesystem;

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
        return 2;
    }
    size_t ran = 0;
    for (int a = 1; a < argc; ++a) {
        const fs::path root = argv[a];
        std::error_code ec;
        std::vector<fs::path> files;
        if (fs::is_regular_file(root, ec)) {
            files.push_back(root);
        } else if (fs::is_directory(root, ec)) {
            for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec))
                if (it->is_regular_file()) files.push_back(it->path());
            if (ec) {
                std::fprintf(stderr, "cannot read %s: %s\n", root.c_str(), ec.message().c_str());
                return 1;
            }
        } else {
            std::fprintf(stderr, "no such directory: %s\n", root.c_str());
            return 1;
        }
        std::sort(files.begin(), files.end());
        for (const auto &f : files) {
            std::ifstream in(f, std::ios::binary);
            if (!in) {
                std::fprintf(stderr, "cannot open %s\n", f.c_str());
                return 1;
            }
            std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
            std::printf("running %s (%zu bytes)\n", f.c_str(), bytes.size());
            std::fflush(stdout);
            LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size());
            ++ran;
        }
    }
    std::printf("ran %zu inputs\n", ran);
    return 0;
}
